/**
 * Reloads the config when its file changes (fs.watch on the folder, so editors that replace the file
 * and Kubernetes ConfigMap symlink swaps are seen), debounced. An invalid file keeps the previous config.
 */
import { type FSWatcher, watch } from 'node:fs';
import path from 'node:path';

export function watchConfigFile(file: string, onChange: () => void, debounceMs = 300): () => void {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, (_event, name) => {
      // ConfigMaps swap a `..data` symlink; other names in the folder are not ours.
      if (name && name !== base && !String(name).startsWith('..')) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    });
    watcher.on('error', () => undefined);
  } catch {
    return () => undefined;
  }
  return () => {
    if (timer) clearTimeout(timer);
    watcher?.close();
  };
}
