/**
 * File names as a backup cursor reports them: `boost::filesystem::path(dbpath) / name`, with `journal/` already in the
 * relative path of log files (docs/psmdb-behaviour.md section 2.3). The dbpath is used as configured, so names are
 * absolute exactly when the dbpath is; it is not normalized (`path.join` would be).
 */
export function filePath(dbpath: string, relative: string): string {
  return dbpath.endsWith('/') ? `${dbpath}${relative}` : `${dbpath}/${relative}`;
}

/** The path relative to the dbpath of a name {@link filePath} produced. */
export function relativeTo(dbpath: string, filename: string): string {
  const prefix = dbpath.endsWith('/') ? dbpath : `${dbpath}/`;
  if (!filename.startsWith(prefix)) throw new Error(`${filename} is not under ${dbpath}`);
  return filename.slice(prefix.length);
}
