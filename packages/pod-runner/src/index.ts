export { startPodRunner, type PodRunner, type PodRunnerOptions, type ImageCommand } from "./runner.js";
export { containerEnv, expand, type EnvSources, EnvResolutionError } from "./env.js";
export { httpProbe, probePort } from "./probe.js";
