import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** Resolves a host name to all of its addresses (dns.lookup with `all`, i.e. what getaddrinfo sees). */
export type HostLookup = (host: string) => Promise<readonly string[]>;

export const systemLookup: HostLookup = async (host) =>
  (await lookup(host, { all: true })).map((a) => a.address);

/** host:port (or [v6]:port) → its parts; throws on a missing port. */
export function splitHostPort(target: string): { host: string; port: string } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(target.trim());
  const host = m?.[1] ?? m?.[2];
  if (m === null || host === undefined || m[3] === undefined) {
    throw new Error(`"${target}" is not host:port`);
  }
  return { host, port: m[3] };
}

function join(host: string, port: string): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The concrete endpoints behind a tier's configured targets. Without `resolve`, the targets
 * themselves (gRPC resolves each name to one connection). With it, every address each host name
 * resolves to — a Kubernetes headless Service lists one per ready pod — so requests can be
 * balanced per pod. A name that fails to resolve contributes nothing this round; the caller keeps
 * its previous endpoints when the whole result is empty.
 */
export async function resolveEndpoints(
  targets: readonly string[],
  resolve: boolean,
  hostLookup: HostLookup = systemLookup,
): Promise<{ endpoints: string[]; errors: string[] }> {
  const endpoints = new Set<string>();
  const errors: string[] = [];
  for (const target of targets) {
    if (!resolve) {
      endpoints.add(target);
      continue;
    }
    try {
      const { host, port } = splitHostPort(target);
      const ips = isIP(host) !== 0 ? [host] : await hostLookup(host);
      for (const ip of ips) endpoints.add(join(ip, port));
    } catch (err) {
      errors.push(`${target}: ${(err as Error).message}`);
    }
  }
  return { endpoints: [...endpoints].sort(), errors };
}
