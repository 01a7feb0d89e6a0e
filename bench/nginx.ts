import { execFileSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort, waitForHttp } from './procs.ts'
import type { Children } from './procs.ts'

/** nginx on PATH (or in /usr/sbin, which a non-root PATH may lack); null when not installed. */
export function findNginx (): string | null {
  try {
    const found = execFileSync('which', ['nginx'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    if (found !== '') return found
  } catch {
    // not on PATH
  }
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : null
}

export interface Nginx {
  url: string
  child: ChildProcess
}

/**
 * nginx in the foreground (`daemon off`, one process) serving `root` with sendfile, everything it
 * writes (pid, logs, temp paths) inside `dir`. The reference for warm-cache throughput.
 */
export async function startNginx (children: Children, bin: string, root: string, dir: string): Promise<Nginx> {
  await mkdir(join(dir, 'logs'), { recursive: true })
  await mkdir(join(dir, 'tmp'), { recursive: true })
  const port = await freePort()
  const conf = `daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path ${join(dir, 'tmp', 'body')};
  proxy_temp_path ${join(dir, 'tmp', 'proxy')};
  fastcgi_temp_path ${join(dir, 'tmp', 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'tmp', 'uwsgi')};
  scgi_temp_path ${join(dir, 'tmp', 'scgi')};
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`
  const confFile = join(dir, 'nginx.conf')
  await writeFile(confFile, conf)
  const logFile = join(dir, 'logs', 'stdout.log')
  const child = children.spawn(bin, ['-p', dir, '-c', confFile, '-e', join(dir, 'logs', 'error.log')], { logFile })
  const url = `http://127.0.0.1:${port}`
  // "/" has no index file and answers 403/404; any HTTP answer means nginx is up.
  await waitForHttp(`${url}/`, { timeoutMs: 10_000, child, logFile, what: 'nginx', anyStatus: true })
  return { url, child }
}
