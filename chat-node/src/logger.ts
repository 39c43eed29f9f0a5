import { pino, type Logger } from "pino";

export type { Logger };

/** Structured JSON logs on stdout, one line per event, tagged with the node id. */
export function createLogger(level: string, nodeId: string): Logger {
  return pino({ level, base: { node: nodeId }, timestamp: pino.stdTimeFunctions.isoTime });
}
