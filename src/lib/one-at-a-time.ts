/**
 * Runs the tasks given under one key one after another, in the order given; tasks under different
 * keys run as they come. A key is kept only while a task of it is queued or running, so the map is
 * bounded by the tasks in flight.
 */
export class OneAtATime {
  readonly #tails = new Map<string, Promise<unknown>>()
  #waiting = 0

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key)
    let result: Promise<T>
    if (before) {
      this.#waiting++
      const start = () => {
        this.#waiting--
        return task()
      }
      result = before.then(start, start)
    } else result = task()
    const tail = result.then(done, done)
    this.#tails.set(key, tail)
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
    return result
  }

  /** Tasks queued behind another of their key, not started yet. */
  get waiting(): number {
    return this.#waiting
  }

  /** Keys with a task queued or running. */
  get keys(): number {
    return this.#tails.size
  }
}

const done = () => {}
