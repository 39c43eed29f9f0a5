export {
  startVibeTalkCluster,
  startLocalKubernetes,
  type LocalKubernetes,
  CHAT_NODE_IMAGE,
  type VibeTalkCluster,
  type ClusterOptions,
} from "./cluster.js";
export { startFrontProxy, type FrontProxy, type FrontProxyOptions } from "./front.js";
