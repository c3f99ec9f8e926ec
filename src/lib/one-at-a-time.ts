/**
 * Runs the tasks given under one key one after another, in the order given; tasks under different
 * keys run as they come. A key is kept only while a task of it is queued or running, so the map is
 * bounded by the tasks in flight.
 */
export class OneAtATime {
  readonly #tails = new Map<string, Promise<unknown>>()

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key)
    const result = before ? before.then(task, task) : task()
    const tail = result.then(done, done)
    this.#tails.set(key, tail)
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
    return result
  }

  /** Keys with a task queued or running. */
  get keys(): number {
    return this.#tails.size
  }
}

const done = () => {}
