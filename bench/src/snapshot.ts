// Which chat-node the benchmark runs: the working tree (default) or a commit exported with `git archive`
// into the system's temporary folder (outside the repository, so linters never see it; a `node_modules`
// link there resolves its packages to the repository's), so a measurement can be pinned to code that
// does not move under it.
import { existsSync } from "node:fs";
import { mkdir, rename, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot, runCommand } from "@vibetalk/testkit";

export interface ChatNodeSource {
  /** The chat-node folder (holding src/main.ts). */
  dir: string;
  /** The commit, short. */
  commit: string;
  /** The working tree's chat-node differs from that commit. */
  dirty: boolean;
  /** For reports: `chat-node at abc1234`, `… + uncommitted changes`. */
  label: string;
}

async function git(args: string[]): Promise<string> {
  const r = await runCommand("git", args, { cwd: repoRoot, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** `spec`: "worktree" (the files as they are now) or any commit-ish (HEAD, a sha, a tag). */
export async function chatNodeSource(spec: string): Promise<ChatNodeSource> {
  if (spec === "worktree") {
    const commit = await git(["rev-parse", "--short", "HEAD"]);
    const dirty = (await git(["status", "--porcelain", "--", "chat-node", "packages/protocol"])) !== "";
    return {
      dir: join(repoRoot, "chat-node"),
      commit,
      dirty,
      label: `chat-node at ${commit}${dirty ? " + uncommitted changes" : ""}`,
    };
  }
  const commit = await git(["rev-parse", "--short", `${spec}^{commit}`]);
  const root = join(tmpdir(), "vibetalk-bench-chat-node", commit);
  if (!existsSync(join(root, "chat-node/src/main.ts"))) {
    const tmp = `${root}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    await symlink(join(repoRoot, "node_modules"), join(tmp, "node_modules"), "dir");
    const r = await runCommand("sh", ["-c", `git archive ${commit} chat-node | tar -x -C "${tmp}"`], {
      cwd: repoRoot,
      timeoutMs: 60_000,
    });
    if (r.code !== 0) throw new Error(`git archive ${commit}: ${r.stderr.trim()}`);
    await rm(root, { recursive: true, force: true });
    await rename(tmp, root);
  }
  return { dir: join(root, "chat-node"), commit, dirty: false, label: `chat-node at ${commit}` };
}

/** `--chat-node=<spec>` from argv, else BENCH_CHAT_NODE, else the working tree. */
export function chatNodeSpec(argv: string[]): string {
  const flag = argv.find((a) => a.startsWith("--chat-node="));
  return flag ? flag.slice("--chat-node=".length) : (process.env.BENCH_CHAT_NODE ?? "worktree");
}
