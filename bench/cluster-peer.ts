import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { blobFile, curlIn, startNginxIn, startStaticIn, waitForCommit } from './cluster-nodes.ts'
import type { CurlTiming } from './cluster-nodes.ts'
import { MB, clusterRow } from './cluster-report.ts'
import type { ClusterRow } from './cluster-report.ts'
import { blobUrl, expectBody, tokenFor, mbps, sampled, selfStats, sha256sum, startNodes, stopNodes, upstreamBlob, upstreamBytes } from './cluster-scenario.ts'
import type { ClusterContext, ClusterScenario } from './cluster-scenario.ts'

/**
 * Goal 1: B pulls a blob A already holds, at ≥ 0.8 × plain HTTP between the same two namespaces: nginx
 * (sendfile) and a plain Node static server in A's namespace serve A's committed blob file, fetched
 * from B's namespace by the same client (curl), once before and once after; the better run counts.
 */
async function run (ctx: ClusterContext, rows: ClusterRow[]): Promise<void> {
  const b = upstreamBlob(ctx, 'peer')
  const refs: Array<{ row: ClusterRow; url: string | null; child: ChildProcess | null; runs: CurlTiming[] }> = [
    { row: clusterRow('peer-nginx', 'baseline: plain HTTP A → B (nginx)'), url: null, child: null, runs: [] },
    { row: clusterRow('peer-static', 'baseline: plain HTTP A → B (Node static server)'), url: null, child: null, runs: [] }
  ]
  const row = clusterRow('peer', 'peer fetch: B pulls what A holds')
  row.goal = '≥ 0.8 × plain HTTP, upstream 0'
  row.ratioOf = '× plain HTTP (nginx)'
  rows.push(...refs.map(r => r.row), row)
  const nodes = await startNodes(ctx, 'peer', 2)
  const [A, B] = nodes as [typeof nodes[0], typeof nodes[0]]
  try {
    const url = blobUrl(ctx, b)
    ctx.log('peer: A fetches the blob (warm-up)')
    const tokenA = await tokenFor(ctx, A.host.ns, url)
    expectBody('A warming', await curlIn(ctx.lan, A.host.ns, url, ctx.timeoutMs, { token: tokenA }), b.size)
    await waitForCommit(A, b.digest, b.size)

    // Both references serve A's committed blob file from A's namespace.
    const blobs = join(A.cacheDir, 'blobs', 'sha256')
    const file = `/${b.digest.slice(0, 2)}/${b.digest}`
    const [nginxRef, staticRef] = refs as [typeof refs[0], typeof refs[0]]
    if (ctx.nginxBin !== null) {
      const n = await startNginxIn(ctx.lan, ctx.nginxBin, A.host, blobs, join(ctx.dir, 'peer', 'nginx'))
      nginxRef.url = `${n.url}${file}`
      nginxRef.child = n.child
    }
    const st = await startStaticIn(ctx.lan, { nodeBin: ctx.nodeBin, root: ctx.root, host: A.host, serve: blobs, logFile: join(ctx.dir, 'peer', 'static.log') })
    staticRef.url = `${st.url}${file}`
    staticRef.child = st.child
    const measureRefs = async (): Promise<void> => {
      for (const r of refs) if (r.url !== null) r.runs.push(await curlIn(ctx.lan, B.host.ns, r.url, ctx.timeoutMs))
    }

    await measureRefs()
    const tokenB = await tokenFor(ctx, B.host.ns, url)
    const before = await upstreamBytes(ctx, 'peer')
    ctx.log('peer: B fetches it')
    const { value: t, rssMiB, cpuS, sysS } = await sampled(nodes, async () => await curlIn(ctx.lan, B.host.ns, url, ctx.timeoutMs, { token: tokenB }))
    const fromUpstream = await upstreamBytes(ctx, 'peer') - before
    await measureRefs()

    const best = new Map<ClusterRow, number>()
    for (const r of refs) {
      for (const [i, x] of r.runs.entries()) expectBody(`${r.row.name} run ${i + 1}`, x, b.size)
      if (r.runs.length === 0) { r.row.notes = 'nginx not installed (apt-get install nginx-light)'; continue }
      const top = Math.max(...r.runs.map(x => mbps(b.size, x.totalS)))
      best.set(r.row, top)
      r.row.mbps = top
      r.row.timeS = b.size / MB / top
      r.row.notes = `curl in B's namespace, before and after the peer fetch: ${r.runs.map(x => mbps(b.size, x.totalS).toFixed(0)).join(', ')} MB/s; best taken`
    }

    row.rssMiB = rssMiB
    expectBody('B from A', t, b.size)
    row.mbps = mbps(b.size, t.totalS)
    row.timeS = t.totalS
    row.upstreamRatio = fromUpstream / b.size
    await waitForCommit(B, b.digest, b.size)
    const got = await sha256sum(blobFile(B, b.digest))
    if (got !== b.digest) throw new Error(`B committed wrong bytes: sha256 ${got}`)
    const s = await selfStats(ctx, B)
    const sA = await selfStats(ctx, A)
    const vsStatic = best.get(staticRef.row)
    row.notes = `TTFB ${t.ttfbS.toFixed(2)} s; ${vsStatic === undefined ? '' : `${(row.mbps / vsStatic).toFixed(2)} × Node static server; `}` +
      `B's bytes_from_peers ÷ size ${((s.bytes_from_peers ?? 0) / b.size).toFixed(3)}, A's bytes_to_peers ÷ size ${((sA.bytes_to_peers ?? 0) / b.size).toFixed(3)}; CPU s A ${cpuS[0]?.toFixed(1)} (system ${sysS[0]?.toFixed(1)}), B ${cpuS[1]?.toFixed(1)} (system ${sysS[1]?.toFixed(1)}); B's blob file sha256 checked`
    // nginx is the reference when installed (the stricter one); the Node server otherwise.
    const ref = best.get(nginxRef.row) ?? vsStatic
    if (!best.has(nginxRef.row)) row.ratioOf = '× plain HTTP (Node static server)'
    if (ref !== undefined) {
      row.ratio = row.mbps / ref
      row.pass = row.ratio >= 0.8 && fromUpstream === 0
    }
  } finally {
    for (const r of refs) if (r.child !== null) await ctx.children.stop(r.child)
    await stopNodes(ctx, 'peer', nodes)
  }
}

export const peerScenario: ClusterScenario = { id: 'peer', blobs: ['peer'], run }
