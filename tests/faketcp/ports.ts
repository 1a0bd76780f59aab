/** Ports for the fake-TCP tests. */

/**
 * A port below the kernel's ephemeral range (32768–60999) that is free for TCP and UDP on every
 * address. No client connection ever uses such a port as its source, so no late segment of
 * another test's dead flow (Go's tcpraw keeps retransmitting to a closed port for a while) can
 * arrive on it, as it could on a recycled ephemeral port.
 */
export function quietPort(): number {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const held: { close(): void }[] = [];
    try {
      held.push(Deno.listen({ hostname: "::", port }));
      held.push(Deno.listenDatagram({ transport: "udp", hostname: "::", port }));
      return port;
    } catch {
      // taken: try another
    } finally {
      for (const h of held) h.close();
    }
  }
  throw new Error("no quiet port found");
}

/** The kernel objects (`socket:[inode]`) behind descriptors of this process. */
export function socketInodes(fds: number[]): string[] {
  return fds.map((fd) => Deno.readLinkSync(`/proc/self/fd/${fd}`));
}

/** Which of `inodes` are still open somewhere in this process. */
export function stillOpen(inodes: string[]): string[] {
  const open = new Set<string>();
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      open.add(Deno.readLinkSync(`/proc/self/fd/${e.name}`));
    } catch {
      // closed while listing
    }
  }
  return inodes.filter((i) => open.has(i));
}
