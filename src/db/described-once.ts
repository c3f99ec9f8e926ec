import pg from 'pg'

/**
 * What `pg` builds from a statement's row description (pinned `pg`'s private `Result` fields): the
 * fields, a parser per field, and the empty row every parsed row starts from.
 */
interface Description {
  fields: unknown[]
  parsers: unknown[] | undefined
  empty: object | null
}

/** `pg`'s wire connection (private), with the descriptions this module keeps on it. */
interface WireConnection {
  parse(query: { text: string; name: string; types: unknown }): void
  bind(config: object): void
  describe(msg: { type: 'P'; name: string }): void
  sync(): void
  submittedNamedStatements: Record<string, string>
  descriptions?: Map<string, Description>
}

/** The private parts of `pg`'s `Query` that this module drives (pinned `pg`, 8.23). */
interface QueryInternals {
  name: string
  text: string
  types: unknown
  values: unknown[]
  portal: string
  binary: boolean | undefined
  rows: number | undefined
  callback: ((err: Error | null, result?: pg.QueryResult) => void) | undefined
  _accumulateRows: unknown
  _result: {
    fields: unknown[]
    _parsers: unknown[] | undefined
    _prebuiltEmptyResultObject: object | null
  }
  hasBeenParsed(connection: WireConnection): boolean
  prepare(connection: WireConnection): void
  handleRowDescription(msg: unknown): void
  handleCommandComplete(msg: unknown, connection: WireConnection): void
  handleError(err: Error, connection: WireConnection): void
  _getRows(connection: WireConnection, rows: number | undefined): void
  listeners(event: string): unknown[]
}

const PgQuery = pg.Query as unknown as new (text: string, values: unknown[]) => QueryInternals

/**
 * A named prepared statement's execution that asks PostgreSQL to describe its result only the
 * first time on a connection. `pg` sends Describe with every execution, and rebuilds the row's
 * parsers from the answer: 4–5% of the server's CPU in the `perf` profiles of a signed GET and of a
 * payment (docs/performance-history.md, seventh pass). A prepared statement's result cannot change on its
 * connection (PostgreSQL refuses to run it if a change of the schema would change it: "cached plan
 * must not change result type"), so what the first answer described holds for as long as the
 * statement is prepared there; a statement sent with its Parse is described again.
 */
class DescribedOnceQuery extends PgQuery {
  #connection: WireConnection | undefined
  #describing = false

  // The text and values as `pg` takes them apart, not as one config object: `pg` copies a config
  // object property by property (`cloneQueryConfig`), 1–2% of the server's CPU per statement.
  constructor(config: { name: string; text: string; values: unknown[] }) {
    super(config.text, config.values)
    this.name = config.name
  }

  /**
   * `Query.prepare`, with Describe only while this connection has no description of the statement,
   * and a failed Bind that leaves the statement prepared: `pg` sends Close then, which drops a
   * statement it still counts as parsed, so that every later execution on the connection fails.
   */
  override prepare(connection: WireConnection): void {
    this.#connection = connection
    const parsed = this.hasBeenParsed(connection)
    if (!parsed) {
      connection.parse({ text: this.text, name: this.name, types: this.types })
      connection.submittedNamedStatements[this.name] = this.text
    }
    try {
      connection.bind({
        portal: this.portal,
        statement: this.name,
        values: this.values,
        binary: this.binary,
        valueMapper: prepareValue,
      })
    } catch (err) {
      // Nothing of the execution was sent (a value that cannot be serialised); Sync answers for it.
      connection.sync()
      this.handleError(err as Error, connection)
      return
    }
    const known = parsed ? connection.descriptions?.get(this.name) : undefined
    if (known) {
      this._result.fields = known.fields.slice()
      this._result._parsers = known.parsers
      this._result._prebuiltEmptyResultObject = known.empty
      // As `handleRowDescription` would have set it.
      this._accumulateRows = this.callback || !this.listeners('row').length
    } else {
      this.#describing = true
      connection.describe({ type: 'P', name: this.portal })
    }
    this._getRows(connection, this.rows)
  }

  override handleRowDescription(msg: unknown): void {
    super.handleRowDescription(msg)
    if (this.#describing) this.#keep()
  }

  override handleCommandComplete(msg: unknown, connection: WireConnection): void {
    // Described, and no row description came: the statement returns no rows (PostgreSQL answered
    // NoData, which `pg` does not report).
    if (this.#describing) this.#keep()
    super.handleCommandComplete(msg, connection)
  }

  #keep(): void {
    const connection = this.#connection!
    connection.descriptions ??= new Map()
    connection.descriptions.set(this.name, {
      fields: this._result.fields,
      parsers: this._result._parsers,
      empty: this._result._prebuiltEmptyResultObject,
    })
    this.#describing = false
  }
}

/** `pg`'s own mapping of a parameter's value to the wire (a string, a Buffer or null). */
export const { prepareValue } = (
  pg as unknown as { utils: { prepareValue: (v: unknown) => unknown } }
).utils

/** Runs a named prepared statement on `client` (through `send`, the client's `query`). */
export function queryDescribedOnce(
  send: (query: unknown) => unknown,
  config: { name: string; text: string; values: unknown[] },
): Promise<pg.QueryResult> {
  return new Promise<pg.QueryResult>((resolve, reject) => {
    const query = new DescribedOnceQuery(config)
    query.callback = (err, result) => (err ? reject(err) : resolve(result!))
    send(query)
  }).catch((err: Error) => {
    // As `pg` does for its own promises: the stack leads back to the caller, not to the socket.
    Error.captureStackTrace(err)
    throw err
  })
}
