import type { FastifyInstance } from 'fastify'
import { registerReadOnly } from './admin.ts'

/**
 * `GET /dashboard`: one page that shows what the node (and its cluster) is doing, refreshed every two
 * seconds from `/cluster/stats`, `/health` and `/peers`: bytes the upstream was spared, hit rate, each
 * node's cache and traffic, the downloads under way with their progress, the peers. Static: the page
 * asks the JSON endpoints itself, so it costs the node nothing while nobody looks.
 */
export function registerDashboard (app: FastifyInstance): void {
  registerReadOnly(app, '/dashboard', async (_request, reply) => {
    reply.header('content-type', 'text/html; charset=utf-8')
    reply.header('cache-control', 'no-store')
    // The page runs only its own script and asks only this node.
    reply.header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
    return PAGE
  })
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>aimirror</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.3rem; margin: 0 0 1rem; } h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .6rem 1rem; min-width: 10rem; }
.card b { display: block; font-size: 1.4rem; }
table { border-collapse: collapse; } td, th { padding: .25rem .7rem; border-bottom: 1px solid #eee; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
progress { width: 12rem; } #error { color: #b00; }
</style></head>
<body>
<h1>aimirror <span id="cluster"></span></h1>
<div id="error"></div>
<div class="cards" id="cards"></div>
<h2>Downloads under way</h2><table id="downloads"></table>
<h2>Nodes</h2><table id="nodes"></table>
<h2>Peers</h2><table id="peers"></table>
<script>
const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
function bytes (n) { let i = 0; while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ } return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i] }
function el (tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e }
function fill (id, head, rows) {
  const t = document.getElementById(id)
  t.replaceChildren()
  const tr = el('tr'); for (const h of head) tr.append(el('th', h)); t.append(tr)
  if (rows.length === 0) { const r = el('tr'); const td = el('td', 'none'); td.colSpan = head.length; r.append(td); t.append(r) }
  for (const row of rows) { const r = el('tr'); for (const c of row) r.append(c instanceof Node ? wrap(c) : el('td', c, typeof c === 'number' || /^[0-9.]+ [KMGT]?i?B$/.test(c) ? 'n' : '')); t.append(r) }
}
function wrap (node) { const td = el('td'); td.append(node); return td }
async function json (path) { const r = await fetch(path, { cache: 'no-store' }); if (!r.ok) throw new Error(path + ': ' + r.status); return r.json() }
async function refresh () {
  try {
    const [stats, health, peers] = await Promise.all([json('/cluster/stats'), json('/health'), json('/peers')])
    const t = stats.totals
    document.getElementById('cluster').textContent = stats.enabled ? '— cluster ' + (stats.cluster || '(unnamed)') + ', ' + stats.mode + ', ' + t.reachable + ' of ' + t.nodes + ' nodes' : ''
    const cards = document.getElementById('cards'); cards.replaceChildren()
    for (const [label, value] of [['spared the upstream', bytes(t.bytes_saved_upstream)], ['hit rate', (t.hit_rate * 100).toFixed(1) + ' %'], ['cached', bytes(t.cache_size_bytes) + ' in ' + t.blobs + ' blobs'], ['from upstream', bytes(t.bytes_from_upstream)], ['from peers', bytes(t.bytes_from_peers)]]) {
      const c = el('div', undefined, 'card'); c.append(el('b', value), el('span', label)); cards.append(c)
    }
    fill('downloads', ['file', 'progress', 'received', 'connections', 'state'], health.progress.map(d => {
      const p = el('progress'); if (d.size) { p.max = d.size; p.value = d.received }
      return [d.url || d.key, p, bytes(d.received) + (d.size ? ' of ' + bytes(d.size) : ''), d.connections, d.state]
    }))
    fill('nodes', ['node', 'cache', 'blobs', 'hits', 'misses', 'from cache', 'from peers', 'from upstream', 'to peers', 'downloads'], stats.nodes.map(n => n.reachable
      ? [(n.self ? '* ' : '') + (n.host ? n.host + ' ' : '') + (n.peer_id || 'this node'), bytes(n.cache.size_bytes), n.cache.blobs, n.hits, n.misses, bytes(n.bytes_from_cache), bytes(n.bytes_from_peers), bytes(n.bytes_from_upstream), bytes(n.bytes_to_peers), n.active_downloads]
      : [n.peer_id, 'unreachable: ' + (n.error || '?'), '', '', '', '', '', '', '', '']))
    fill('peers', ['peer', 'member', 'banned', 'addresses', 'since'], peers.peers.map(p => [p.peer_id, p.member ? 'yes' : 'no', p.banned ? 'yes' : 'no', p.addresses.join(' '), p.since || '']))
    const away = health.upstreams_away || []
    document.getElementById('error').textContent = away.length === 0 ? '' : 'upstream away (cached answers served at once): ' + away.map(a => a.origin).join(', ')
  } catch (err) {
    document.getElementById('error').textContent = 'cannot reach the node: ' + err.message
  }
}
refresh()
setInterval(refresh, 2000)
</script>
</body></html>
`
