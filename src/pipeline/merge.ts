/**
 * Interleaves several async iterators, yielding items in the order they become ready (n > 1
 * choices generate concurrently). Returning early closes every source, which frees their tier slots.
 */
export async function* merge<T>(sources: readonly AsyncIterator<T>[]): AsyncGenerator<T> {
  if (sources.length === 1) {
    const only = sources[0]!;
    try {
      for (let r = await only.next(); !r.done; r = await only.next()) yield r.value;
    } finally {
      await only.return?.();
    }
    return;
  }
  const pending = new Map<number, Promise<{ i: number; r: IteratorResult<T> }>>();
  const pull = (i: number): void => {
    pending.set(
      i,
      sources[i]!.next().then((r) => ({ i, r })),
    );
  };
  sources.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0) {
      const { i, r } = await Promise.race(pending.values());
      if (r.done) {
        pending.delete(i);
        continue;
      }
      pull(i);
      yield r.value;
    }
  } finally {
    // Close what is still running; their in-flight next() results are dropped.
    await Promise.allSettled([...pending.keys()].map((i) => sources[i]!.return?.()));
  }
}
