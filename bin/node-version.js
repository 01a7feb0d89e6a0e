// The oldest Node.js the node runs on: zstd in node:zlib (conda's .zst repodata) came with 22.15.
// Plain JavaScript that any Node parses, so an old one can say what it lacks instead of failing on an import.
export const NEEDS = '22.15'

/** Whether Node.js `version` ("20.20.2") is older than NEEDS. */
export function tooOld (version) {
  const [major, minor] = version.split('.').map(Number)
  const [needMajor, needMinor] = NEEDS.split('.').map(Number)
  return major < needMajor || (major === needMajor && minor < needMinor)
}
