// The web client for browser tests: bundled once per test file from chat-node/web/src into a temp
// folder (a complete PUBLIC_DIR: scripts/bundle-web.mjs), and Chromium through playwright-core.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { chromium, type Browser, type Page } from "playwright-core";

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
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
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
