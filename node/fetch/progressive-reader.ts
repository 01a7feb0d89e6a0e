import { CursorReader } from './cursor-reader.ts'
import { DOWNLOAD_CHUNK, DownloadCursor } from './download-cursor.ts'
import type { DownloadCursorOptions } from './download-cursor.ts'
import type { Download } from './download.ts'

export type ProgressiveReaderOptions = DownloadCursorOptions

/** [start, end) of a blob that is still downloading (see DownloadCursor) as a Readable. */
export class ProgressiveReader extends CursorReader {
  constructor (download: Download, start: number, end: number, options: ProgressiveReaderOptions = {}) {
    super(new DownloadCursor(download, start, end, options), download.pacer, 4 * DOWNLOAD_CHUNK)
  }
}
