export {
  startVibeTalkCluster,
  localOperatorBundle,
  type VibeTalkCluster,
  type ClusterOptions,
} from "./cluster.js";
