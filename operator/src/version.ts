/**
 * The operator's version (operator/package.json, read at build time: esbuild inlines it into the bundle)
 * and the chat-node image of that same version, which a ChatCluster without `spec.image` runs.
 */
import pkg from "../package.json" with { type: "json" };

export const OPERATOR_VERSION: string = pkg.version;
/** Image references live under localhost/vibetalk (decision 18): nothing is pulled for them. */
export const DEFAULT_CHAT_NODE_IMAGE = `localhost/vibetalk/chat-node:${OPERATOR_VERSION}`;
