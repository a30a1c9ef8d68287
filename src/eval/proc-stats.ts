import { readFileSync } from 'node:fs';

/**
 * Resource figures of a process from Linux procfs (proc(5)): peak resident set (VmHWM in
 * /proc/<pid>/status) and CPU time (utime + stime, fields 14 and 15 of /proc/<pid>/stat).
 */

/** Clock ticks per second of /proc/<pid>/stat; 100 on every Linux ABI Node supports (sysconf(_SC_CLK_TCK)). */
const CLK_TCK = 100;

/** Peak RSS in bytes, or undefined when procfs is unavailable (not Linux, process gone). */
export function peakRssBytes(pid: number = process.pid): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/** User + system CPU time of a process in ms. */
export function cpuTimeMs(pid: number = process.pid): number | undefined {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state), so utime (14) and stime (15) are fields[11] and fields[12].
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** CPU time of several processes (the gateway and its sidecar), summed. */
export function totalCpuMs(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + (cpuTimeMs(pid) ?? 0), 0);
}
