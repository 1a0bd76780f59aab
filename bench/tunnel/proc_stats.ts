/**
 * Per-process resource readings from /proc (Linux): CPU time of every thread, peak and current
 * resident memory, and the kernel's drop counters of the UDP sockets a process holds.
 *
 * @module
 */

/** Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on every Linux port). */
const CLOCK_TICKS = 100;

/** utime + stime of all threads of `pid` in seconds (10 ms resolution), or NaN if it is gone. */
export function cpuSeconds(pid: number | "self"): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name may hold spaces and parentheses: fields restart after the last ")".
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** Resident memory of `pid` in bytes: `peak` is VmHWM, `now` is VmRSS (NaN if it is gone). */
export function residentBytes(pid: number | "self"): { peak: number; now: number } {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = (name: string) => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
      return m ? Number(m[1]) * 1024 : NaN;
    };
    return { peak: kb("VmHWM"), now: kb("VmRSS") };
  } catch {
    return { peak: NaN, now: NaN };
  }
}

/** File descriptors `pid` holds open now (NaN if it is gone). */
export function openFds(pid: number | "self"): number {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
    return n;
  } catch {
    return NaN;
  }
}

/** Socket inodes held open by `pid` (from its /proc/<pid>/fd links). */
export function socketInodes(pid: number | "self"): Set<string> {
  const inodes = new Set<string>();
  try {
    for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`));
        if (m) inodes.add(m[1]);
      } catch { /* closed meanwhile */ }
    }
  } catch { /* process gone */ }
  return inodes;
}

/**
 * Datagrams the kernel dropped on receive for the UDP and raw sockets `pid` holds now (the
 * `drops` column of /proc/net/udp, udp6, raw and raw6: receive-buffer overflows and other
 * receive drops, counted per socket since it was opened; raw sockets are what `-tcp` receives
 * on). NaN when the process is gone.
 */
export function udpSocketDrops(pid: number): number {
  const inodes = socketInodes(pid);
  if (inodes.size === 0) return NaN;
  let drops = 0;
  for (const file of ["/proc/net/udp", "/proc/net/udp6", "/proc/net/raw", "/proc/net/raw6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 13 && inodes.has(f[9])) drops += Number(f[12]);
    }
  }
  return drops;
}

/**
 * Resets the peak resident memory (VmHWM) of `pid` to its current RSS (writing 5 to
 * /proc/<pid>/clear_refs, Linux 4.0+), so that a later VmHWM is the peak since now. False when
 * the kernel or the permissions do not allow it (then only sampling tells a phase's peak).
 */
export function resetPeakRss(pid: number): boolean {
  try {
    Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * The peak resident memory of each of `pids` over one phase: VmHWM reset at the start and read at
 * the end ("hwm", exact), and VmRSS sampled every `intervalMs` meanwhile ("sampled", a lower
 * bound: a peak between two samples is missed). `stop()` ends the phase; its `peak` is the VmHWM
 * when every reset worked, the sampled maximum otherwise, and `method` says which.
 */
export function peakRssMonitor(
  pids: readonly number[],
  intervalMs = 50,
): { stop(): { peak: number[]; sampled: number[]; method: "hwm" | "sampled" } } {
  const reset = pids.map(resetPeakRss).every((ok) => ok);
  const sampled = pids.map((pid) => residentBytes(pid).now);
  const sample = () => {
    pids.forEach((pid, i) => {
      const now = residentBytes(pid).now;
      if (now > sampled[i] || !Number.isFinite(sampled[i])) sampled[i] = now;
    });
  };
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const hwm = pids.map((pid) => residentBytes(pid).peak);
      return reset
        ? { peak: hwm, sampled, method: "hwm" }
        : { peak: [...sampled], sampled, method: "sampled" };
    },
  };
}
