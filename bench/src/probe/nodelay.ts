// Preload for chat-node processes (`node --import`), used by the latency probe only: every TCP socket
// gets TCP_NODELAY, whatever its library asks for. amqplib leaves Nagle's algorithm on unless its
// caller passes `{ noDelay: true }`; this shows what passing it would change, without editing chat-node.
import net from "node:net";

const setNoDelay = net.Socket.prototype.setNoDelay;
net.Socket.prototype.setNoDelay = function (this: net.Socket) {
  return setNoDelay.call(this, true);
};
