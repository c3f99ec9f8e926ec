/**
 * Group commit: items submitted while a batch is being committed wait, and go together in the next
 * batch, so that the work of one commit is shared by everything that arrived meanwhile. An item
 * that finds nothing running goes at once, alone: at low load nothing waits. When a batch fails as
 * a whole, its items are retried one by one through `one`, so that one bad item cannot fail the
 * others.
 */
export function groupCommit<T, R>(opts: {
  /** Results in the order of the items. */
  batch: (items: T[]) => Promise<R[]>
  one: (item: T) => Promise<R>
  maxBatch: number
  onBatchError?: (err: unknown, size: number) => void
}): (item: T) => Promise<R> {
  const queue: { item: T; resolve: (r: R) => void; reject: (err: unknown) => void }[] = []
  let running = false

  const run = async () => {
    running = true
    while (queue.length > 0) {
      const taken = queue.splice(0, opts.maxBatch)
      try {
        const results = await opts.batch(taken.map((q) => q.item))
        for (const [i, q] of taken.entries()) q.resolve(results[i]!)
      } catch (err) {
        opts.onBatchError?.(err, taken.length)
        for (const q of taken) await opts.one(q.item).then(q.resolve, q.reject)
      }
    }
    running = false
  }

  return (item) =>
    new Promise<R>((resolve, reject) => {
      queue.push({ item, resolve, reject })
      if (!running) void run()
    })
}
