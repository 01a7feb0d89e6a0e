/**
 * Runs each id's writes one after another, in the order they were issued. LevelDB runs operations on
 * a thread pool, so a delete issued after a put may otherwise land first and leave the put's entry.
 */
export class WriteOrder {
  /** The last write issued for each id, settled either way. */
  private readonly tails = new Map<string, Promise<void>>()

  /** Runs `write` after the writes issued for `id` before it, whatever their outcome. */
  run<T> (id: string, write: () => Promise<T>): Promise<T> {
    const before = this.tails.get(id)
    const run = before === undefined ? write() : before.then(write)
    const tail = run.then(() => {}, () => {})
    this.tails.set(id, tail)
    void tail.then(() => { if (this.tails.get(id) === tail) this.tails.delete(id) })
    return run
  }

  /** Resolves once every write issued so far has landed or failed. */
  async idle (): Promise<void> {
    await Promise.all(this.tails.values())
  }

  /** Resolves once the writes issued for `id` so far have landed or failed. */
  async settled (id: string): Promise<void> {
    await this.tails.get(id)
  }
}
