/** The pip bench's result table: wall and fetch-phase times with ratios to the floor and to direct. */

export interface PipRun {
  id: 'floor' | 'direct' | 'cold' | 'warm' | 'floor-end'
  wallS: number
  fetchS: number | null
  /** Body bytes the upstream sent during the run (null: no network). */
  upstreamBytes: number | null
  upstreamRequests: number | null
  peakConnections: number | null
  /** Peak RSS of the node during the run. */
  rssMiB: number | null
}

export interface PipBenchInfo {
  packages: readonly string[]
  wheels: number
  totalBytes: number
  perConn: number
  aggregate: number
  latencyMs: number
  /** The files rule's concurrency when set (null: the default). */
  conns: number | null
}

/** Goals of the issue: cold wall vs floor, cold fetch phase vs direct, warm wall vs floor ("within noise"). */
export const GOALS = { coldWallOfFloor: 1.3, coldFetchSpeedup: 20, warmWallOfFloor: 1.1 }

interface Line { name: string, ratio: number | null, of: string, goal: string, pass: boolean | null, run: PipRun, notes: string }

const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length
const num = (v: number | null | undefined, digits = 2): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits))

export function pipTable (runs: readonly PipRun[], info: PipBenchInfo): string {
  const by = (id: PipRun['id']): PipRun | undefined => runs.find((r) => r.id === id)
  const floors = runs.filter((r) => r.id === 'floor' || r.id === 'floor-end')
  // The floor is the mean of its runs; their spread is shown as the noise the warm goal allows for.
  const floor: PipRun | undefined = floors.length === 0
    ? undefined
    : { ...(floors[0] as PipRun), wallS: mean(floors.map((f) => f.wallS)), fetchS: mean(floors.map((f) => f.fetchS ?? NaN)) }
  const spread = floors.length < 2 ? '' : `; runs ${floors.map((f) => `${f.wallS.toFixed(1)} s`).join(', ')}`
  const direct = by('direct')
  const ofFloor = (r: PipRun): number | null => floor === undefined ? null : r.wallS / floor.wallS
  const mbps = (r: PipRun): string => r.fetchS === null ? '' : `${(info.totalBytes / 1e6 / r.fetchS).toFixed(1)} MB/s over the fetch phase`
  const lines: Line[] = []
  if (floor !== undefined) lines.push({ name: 'floor: local files, no network', ratio: 1, of: '× floor', goal: '–', pass: null, run: floor, notes: `pip --no-index --find-links; mean of ${floors.length}${spread}` })
  if (direct !== undefined) lines.push({ name: 'direct from the upstream', ratio: ofFloor(direct), of: '× floor', goal: '–', pass: null, run: direct, notes: mbps(direct) })
  const cold = by('cold')
  if (cold !== undefined) {
    const wall = ofFloor(cold)
    lines.push({ name: 'node cold: wall', ratio: wall, of: '× floor', goal: `≤ ${GOALS.coldWallOfFloor}`, pass: wall === null ? null : wall <= GOALS.coldWallOfFloor, run: cold, notes: mbps(cold) })
    const speedup = direct?.fetchS == null || cold.fetchS === null ? null : direct.fetchS / cold.fetchS
    lines.push({ name: 'node cold: fetch phase', ratio: speedup, of: '× faster than direct', goal: `≥ ${GOALS.coldFetchSpeedup}`, pass: speedup === null ? null : speedup >= GOALS.coldFetchSpeedup, run: cold, notes: floor?.fetchS == null ? '' : `floor fetch phase ${floor.fetchS.toFixed(1)} s` })
  }
  const warm = by('warm')
  if (warm !== undefined) {
    const wall = ofFloor(warm)
    lines.push({ name: 'node warm: wall', ratio: wall, of: '× floor', goal: `≤ ${GOALS.warmWallOfFloor} (noise)`, pass: wall === null ? null : wall <= GOALS.warmWallOfFloor, run: warm, notes: 'same node, new venv' })
  }
  const head = [
    `pip install ${info.packages.join(' ')}: ${info.wheels} wheels, ${(info.totalBytes / 1e6).toFixed(1)} MB; upstream ${(info.perConn / 1e6).toFixed(1)} MB/s per connection, ` +
    `${(info.aggregate / 1e6).toFixed(0)} MB/s aggregate, ${info.latencyMs} ms latency; files rule concurrency ${info.conns ?? 'default'}`,
    '',
    '| run | ratio | of | goal | ok | wall s | fetch phase s | install phase s | upstream MB | upstream requests | peak upstream conns | node peak RSS MiB | notes |',
    '|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|'
  ]
  const rows = lines.map((l) => {
    const ok = l.pass === null ? '–' : l.pass ? 'yes' : '**no**'
    const r = l.run
    return `| ${l.name} | ${num(l.ratio)} | ${l.of} | ${l.goal} | ${ok} | ${num(r.wallS, 1)} | ${num(r.fetchS, 1)} | ${num(r.fetchS === null ? null : r.wallS - r.fetchS, 1)} | ${r.upstreamBytes === null ? '–' : (r.upstreamBytes / 1e6).toFixed(1)} | ` +
      `${r.upstreamRequests ?? '–'} | ${r.peakConnections ?? '–'} | ${num(r.rssMiB, 0)} | ${l.notes} |`
  })
  return [...head, ...rows].join('\n')
}
