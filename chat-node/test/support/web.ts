// The web client for browser tests: bundled once per test file from chat-node/web/src into a temp
// folder (a complete PUBLIC_DIR: scripts/bundle-web.mjs), and Chromium through playwright-core.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import type { ChatNode } from "../../src/node.js";
import { startNode, startServices, type Services } from "./harness.js";

const ROOT = resolve(import.meta.dirname, "../../..");
export const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";

export interface WebClient {
  /** PUBLIC_DIR for startNode. */
  dir: string;
  /** The bundler's line: sizes and time. */
  report: string;
  remove(): Promise<void>;
}

export async function buildWebClient(): Promise<WebClient> {
  const dir = await mkdtemp(join(tmpdir(), "vibetalk-web-"));
  const { stdout } = await promisify(execFile)(process.execPath, ["scripts/bundle-web.mjs", dir], {
    cwd: ROOT,
  });
  return { dir, report: stdout.trim(), remove: () => rm(dir, { recursive: true, force: true }) };
}

export async function launchChromium(): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `Chromium is required at ${CHROMIUM} (set CHROMIUM_PATH)`);
  // Names resolve to nothing but loopback: the browser reaches no address outside 127.0.0.0/8 (a push
  // subscription would otherwise try the browser vendor's push service).
  const resolver = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1";
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", resolver] });
}

/** Registers `username` (display name: the same in capitals) on the page's node and waits until connected. */
export async function register(page: Page, url: string, username: string): Promise<void> {
  await page.goto(url);
  await page.fill("#auth-username", username);
  await page.fill("#auth-password", "correct horse battery");
  await page.fill("#auth-display", username.toUpperCase());
  await page.click('button[data-mode="register"]');
  await page.waitForSelector("#app:not([hidden])");
  await page.waitForSelector("#conn-state.on");
}

/** Uncaught errors of the pages, to assert there were none. */
export function pageErrors(...pages: Page[]): string[] {
  const errors: string[] = [];
  for (const p of pages) p.on("pageerror", (e) => errors.push(e.message));
  return errors;
}

/**
 * The browser tests' cluster: the client bundled once, the services, node A owning partitions 0-3
 * and node B 4-7 (both serving the client), and Chromium; `page` opens a page in a new context;
 * `stop` closes and removes all of it.
 */
export interface WebCluster {
  services: Services;
  A: ChatNode;
  B: ChatNode;
  web: WebClient;
  page(opts?: Parameters<Browser["newContext"]>[0]): Promise<Page>;
  stop(): Promise<void>;
}

/** `env`: more environment for both nodes (e.g. the VAPID keys of web-push.test.ts). */
export async function startWebCluster(env: Record<string, string> = {}): Promise<WebCluster> {
  const web = await buildWebClient();
  console.log(`# ${web.report}`);
  const contexts: BrowserContext[] = [];
  let services: Services | undefined;
  let nodes: ChatNode[] = [];
  let browser: Browser | undefined;
  const stop = async (): Promise<void> => {
    for (const c of contexts) await c.close();
    await browser?.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await services?.stop();
    await web.remove();
  };
  try {
    services = await startServices();
    const A = await startNode(services, { ...env, OWNED_PARTITIONS: "0-3", PUBLIC_DIR: web.dir });
    nodes = [A];
    const B = await startNode(services, { ...env, OWNED_PARTITIONS: "4-7", PUBLIC_DIR: web.dir });
    nodes = [A, B];
    const b = await launchChromium();
    browser = b;
    const page = async (opts: Parameters<Browser["newContext"]>[0] = {}): Promise<Page> => {
      const ctx = await b.newContext(opts);
      contexts.push(ctx);
      return ctx.newPage();
    };
    return { services, A, B, web, page, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
