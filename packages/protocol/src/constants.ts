/** Protocol constants that need no zod, so a browser bundle can import them (see client.ts). */

/** Bumped when a change breaks existing clients. */
export const PROTOCOL_VERSION = 1;
export const API_PREFIX = "/api/v1";
