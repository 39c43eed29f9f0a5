import { createServer, connect, type Server, type Socket } from "node:net";
import { freePort } from "@vibetalk/testkit";

/**
 * A loopback TCP proxy in front of a server, for outages of any length: `cut()` drops every
 * connection and refuses new ones (the port is closed, as when the server is down); `restore()`
 * listens again on the same port. Clients see exactly what a dead server looks like.
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const p = new TcpProxy(await freePort(), target);
    await p.restore();
    return p;
  }

  /** `url` with its host:port replaced by the proxy's. */
  static rewrite(url: string, port: number): string {
    return url.replace(
      /\/\/([^@/]*@)?[^/]+/,
      (_m, auth: string | undefined) => `//${auth ?? ""}127.0.0.1:${port}`,
    );
  }

  get down(): boolean {
    return this.server === null;
  }

  restore(): Promise<void> {
    if (this.server) return Promise.resolve();
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => undefined);
        s.setNoDelay(true);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
  }

  async cut(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }

  async stop(): Promise<void> {
    await this.cut();
  }
}
