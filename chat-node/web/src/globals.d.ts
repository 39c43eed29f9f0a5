// The Socket.IO client is the script the chat-node serves at /socket.io/socket.io.js (the server's own
// version), loaded before the bundle; only its types come from the socket.io-client package.
import type { ManagerOptions, Socket, SocketOptions } from "socket.io-client";

declare global {
  function io(opts?: Partial<ManagerOptions & SocketOptions>): Socket;
}
