/** Polls `cond` every 20 ms for up to `ms`: how long it took to hold, or undefined if it never did. */
export async function within(ms: number, cond: () => boolean): Promise<number | undefined> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (cond()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}
