export {
  startRedis,
  REDIS_VERSIONS,
  type RedisService,
  type RedisOptions,
  type RedisVersion,
} from "./redis.js";
export {
  startRabbitMQ,
  RABBITMQ_VERSIONS,
  type RabbitMQService,
  type RabbitMQOptions,
  type RabbitMQVersion,
} from "./rabbitmq.js";
export { serversImage, type ServersImage } from "./servers-image.js";
export { startMongo, type MongoService } from "./mongo.js";
export {
  startControlPlane,
  waitForCrdEstablished,
  NODE_NAME,
  type ControlPlane,
  type ControlPlaneOptions,
  type NodeCredentials,
} from "./controlplane.js";
export { freePort } from "./ports.js";
export {
  ManagedProcess,
  ServiceStartError,
  waitUntil,
  tcpOpen,
  tempDir,
  run,
  runCommand,
} from "./process.js";
export { toolPath, toolVersions, cacheDir, repoRoot } from "./tools.js";
export {
  AFFINITY_COOKIE,
  nginxChatConfig,
  startNginx,
  pollingSessionAnswers,
  followDrains,
  type DrainFollowingClient,
  type DrainLog,
  type NginxAffinity,
  type NginxOptions,
  type NginxService,
} from "./nginx.js";
export { waitFor } from "./wait.js";
export { acquireHostNetwork, cleanUpNode, GATEWAY, SERVICE_CIDR, type HostNetwork } from "./host-network.js";
export { startNode, builtImages, PAUSE_IMAGE, type KubeNode, type ImageArchive } from "./node.js";
