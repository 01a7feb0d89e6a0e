import { BadRequestError } from '../errors.ts'

/** A request target split into its raw (still percent-encoded) path and query. */
export interface RequestTarget {
  /** Path as the client sent it, starting with a single `/`. */
  readonly pathname: string
  /** Query string without the leading `?`; '' when absent. */
  readonly search: string
}

// Never valid in a raw request path: controls (incl. NUL, CR, LF), space, backslash, fragment.
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const FORBIDDEN_RAW = /[\u0000-\u0020\u007f\\#]/
// Never valid once decoded either (a percent-encoded space or backslash is fine, a NUL is not).
// eslint-disable-next-line no-control-regex -- as above
const FORBIDDEN_DECODED = /[\u0000-\u001f\u007f]/

/**
 * Splits and checks a request target (`req.url`). The path is kept raw so it is forwarded byte for byte,
 * but it is also decoded once to refuse anything that could climb out of an upstream's base path or name
 * another host: absolute-form targets, `//host` prefixes, `..` segments (plain or percent-encoded),
 * backslashes and control characters.
 */
export function parseRequestTarget (target: string): RequestTarget {
  if (!target.startsWith('/')) {
    // `OPTIONS *` asks about the server itself: the mirror only serves paths.
    const reason = target === '*' ? 'asterisk_form' : 'absolute_form'
    throw new BadRequestError('Request target must be a path', { detail: { reason } })
  }
  const q = target.indexOf('?')
  const pathname = q === -1 ? target : target.slice(0, q)
  const search = q === -1 ? '' : target.slice(q + 1)
  if (pathname.startsWith('//')) throw new BadRequestError('Path must not start with //', { detail: { reason: 'authority_in_path' } })
  if (FORBIDDEN_RAW.test(pathname) || FORBIDDEN_DECODED.test(search)) {
    throw new BadRequestError('Path contains forbidden characters', { detail: { reason: 'forbidden_character' } })
  }
  let decoded: string
  try {
    decoded = decodeURIComponent(pathname)
  } catch (cause) {
    throw new BadRequestError('Path has invalid percent-encoding', { cause, detail: { reason: 'bad_encoding' } })
  }
  if (FORBIDDEN_DECODED.test(decoded)) throw new BadRequestError('Path contains forbidden characters', { detail: { reason: 'forbidden_character' } })
  if (/^[/\\]{2}/.test(decoded)) throw new BadRequestError('Path must not start with //', { detail: { reason: 'authority_in_path' } })
  // Backslash counts as a separator too: some upstream servers treat it as one.
  for (const segment of decoded.split(/[/\\]/)) {
    if (segment === '..' || segment === '.') throw new BadRequestError('Path must not contain dot segments', { detail: { reason: 'dot_segment' } })
  }
  return { pathname, search }
}
