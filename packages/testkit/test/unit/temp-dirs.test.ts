// Temporary folders of the test harness: removed when the run exits (a signal included), and what a
// killed run left is removed by the next run, never a live run's folder nor one with a mount inside.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { hasMounts, removeStaleTempDirs } from "../../src/process.js";

const processTs = fileURLToPath(new URL("../../src/process.ts", import.meta.url));

/** A pid that no process has: a child that has exited. */
function deadPid(): number {
  return Number(execFileSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).trim());
}

async function folder(parent: string, name: string, owner?: number): Promise<string> {
  const path = join(parent, name);
  await mkdir(path);
  await writeFile(join(path, "data"), "x");
  if (owner !== undefined) await writeFile(join(path, ".vibetalk-owner"), `${owner}\n`);
  return path;
}

test("a killed run's folders are removed; a live run's, an unowned one and others' are kept", async () => {
  const parent = await mkdtemp(join(tmpdir(), "temp-dirs-test-"));
  try {
    const stale = await folder(parent, "vibetalk-mongo-aaaaaa", deadPid());
    const live = await folder(parent, "vibetalk-redis-bbbbbb", process.pid);
    const unowned = await folder(parent, "vibetalk-bench-chat-node");
    const other = await folder(parent, "someone-else-cccccc", deadPid());
    const removed = await removeStaleTempDirs(parent);
    assert.deepEqual(removed, [stale]);
    assert.equal(existsSync(stale), false);
    for (const kept of [live, unowned, other]) assert.ok(existsSync(kept), kept);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});

test("a folder with something mounted inside is never removed", async () => {
  const parent = await mkdtemp(join(tmpdir(), "temp-dirs-test-"));
  const stale = await folder(parent, "vibetalk-k8s-dddddd", deadPid());
  const mountPoint = join(stale, "pods", "volume");
  await mkdir(mountPoint, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint]);
  try {
    await writeFile(join(mountPoint, "keep"), "x");
    assert.equal(hasMounts(stale), true);
    assert.deepEqual(await removeStaleTempDirs(parent), []);
    assert.ok(existsSync(join(mountPoint, "keep")));
  } finally {
    execFileSync("umount", [mountPoint]);
    assert.equal(hasMounts(stale), false);
    await rm(parent, { recursive: true, force: true });
  }
});

test("a run stopped by SIGTERM removes its folders on the way out; a SIGKILLed one's go at the next start", async () => {
  const parent = await mkdtemp(join(tmpdir(), "temp-dirs-test-"));
  const run = (then: string) =>
    new Promise<{ path: string; code: number | null; signal: string | null }>((resolve, reject) => {
      const script = [
        `import { tempDir } from ${JSON.stringify(processTs)};`,
        `const d = await tempDir("child");`,
        `console.log(d.path);`,
        then,
        `setInterval(() => undefined, 1000);`,
      ].join("\n");
      const c = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        env: { ...process.env, TMPDIR: parent, VIBETALK_KEEP_TMP: "" },
      });
      let out = "";
      c.stdout.on("data", (d: Buffer) => (out += d.toString()));
      c.once("error", reject);
      c.once("exit", (code, signal) => resolve({ path: out.trim(), code, signal }));
    });
  try {
    const termed = await run(`process.kill(process.pid, "SIGTERM");`);
    assert.ok(termed.path.startsWith(join(parent, "vibetalk-child-")), termed.path);
    assert.equal(existsSync(termed.path), false, "removed at exit after SIGTERM");
    const killed = await run(`process.kill(process.pid, "SIGKILL");`);
    assert.equal(killed.signal, "SIGKILL");
    assert.ok(existsSync(killed.path), "a SIGKILLed run cannot clean up");
    assert.deepEqual(await removeStaleTempDirs(parent), [killed.path]);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});
