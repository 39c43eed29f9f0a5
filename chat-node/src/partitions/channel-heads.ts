import type { StoredMessage } from "../domain/messages.js";
import { previewOf } from "../domain/messages.js";
import type { Logger } from "../logger.js";
import type { ChannelHead, Store } from "../ports.js";

/** The head (last seq + preview) a stored message makes for its channel; an event has no preview (pure). */
export function headOf(m: StoredMessage): ChannelHead {
  return {
    channelId: m.channelId,
    lastSeq: m.seq,
    lastMessage:
      m.kind === undefined
        ? {
            seq: m.seq,
            senderId: m.senderId,
            body: previewOf(m.body),
            hasFiles: m.fileIds.length > 0,
            createdAt: m.createdAt,
          }
        : null,
  };
}

/** Two heads of a channel as one: the higher `lastSeq`, the preview of the newer plain message (pure). */
export function newerHead(a: ChannelHead | undefined, b: ChannelHead): ChannelHead {
  if (!a) return b;
  const [lo, hi] = a.lastSeq > b.lastSeq ? [b, a] : [a, b];
  return { ...hi, lastMessage: hi.lastMessage ?? lo.lastMessage };
}

/** The newest head per channel among messages (pure). */
export function headsOf(messages: readonly StoredMessage[]): ChannelHead[] {
  const best = new Map<string, ChannelHead>();
  for (const m of messages) best.set(m.channelId, newerHead(best.get(m.channelId), headOf(m)));
  return [...best.values()];
}

/**
 * `channels.lastSeq` and the preview are a copy of the messages (the truth), kept for the
 * recent-chats list and unread counts. Writing them is an update, which FerretDB pays with a
 * collection scan, so it stays off the message path: heads are coalesced in memory and written
 * every `intervalMs` (one conditional update per channel, in small batches). A head lost in a
 * crash is repaired when the next owner first reads the channel's last message.
 */
export class ChannelHeadsWriter {
  private readonly pending = new Map<string, ChannelHead>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  /** Failed flushes in a row: the next one waits longer (up to 5 s), and only some are logged. */
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  raise(heads: readonly ChannelHead[]): void {
    for (const h of heads) this.pending.set(h.channelId, newerHead(this.pending.get(h.channelId), h));
    if (!this.timer && !this.stopped && this.pending.size > 0) {
      const wait = Math.min(5000, this.intervalMs * 2 ** Math.min(this.failures, 5));
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, wait);
      this.timer.unref();
    }
  }

  flush(): Promise<void> {
    if (this.pending.size === 0) return this.writing;
    const heads = [...this.pending.values()];
    this.pending.clear();
    this.writing = this.writing.then(async () => {
      try {
        await this.store.raiseChannelHeads(heads);
        this.failures = 0;
      } catch (err) {
        if (this.failures % 20 === 0)
          this.log.warn(
            {
              event: "heads.flush_failed",
              heads: heads.length,
              failures: this.failures + 1,
              err: (err as Error).message,
            },
            "channel heads kept for retry",
          );
        this.failures++;
        this.raise(heads);
      }
    });
    return this.writing;
  }

  /** Writes what is pending once more; what still fails then is repaired by the next owner's first read. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
  }
}
