/**
 * A request target with its dot segments (`.`, `..`, also percent-encoded as `%2e`) removed
 * from the path, as RFC 3986 section 5.2.4 resolves them, so that `/x/../v1/models` reaches the
 * route `/v1/models` as a browser or curl would have sent it. fastify's router (find-my-way)
 * decodes percent-encoding, drops duplicate and trailing slashes, the query and the fragment and
 * reads absolute-form targets, but leaves dot segments alone. Auth never reads the target
 * (src/api/auth.ts reads the matched route); this only makes equivalent targets reach one route.
 * Empty segments are dropped too, as the router drops them (`ignoreDuplicateSlashes`).
 */
export function withoutDotSegments(target: string): string {
  if (!DOT_SEGMENT.test(target)) return target;
  // Absolute-form (`http://host/path`): the path starts after the authority.
  const start = ABSOLUTE_PREFIX.exec(target)?.[0].length ?? 0;
  const tail = target.slice(start).search(/[?#]/);
  const end = tail === -1 ? target.length : start + tail;
  const out: string[] = [];
  for (const segment of target.slice(start, end).split('/')) {
    const plain = segment.replace(/%2e/gi, '.');
    if (plain === '..') out.pop();
    else if (plain !== '.' && segment !== '') out.push(segment);
  }
  return `${target.slice(0, start)}/${out.join('/')}${target.slice(end)}`;
}

/** A `.` or `..` segment, plain or percent-encoded, anywhere (the query too: a cheap pre-check). */
const DOT_SEGMENT = /\/(?:\.|%2e){1,2}(?:[/?#]|$)/i;
const ABSOLUTE_PREFIX = /^[a-z][a-z\d+.-]*:\/\/[^/?#]*/i;
