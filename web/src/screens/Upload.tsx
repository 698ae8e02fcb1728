import { useRef, useState } from 'preact/hooks';
import { ApiError, api, photos, REJECTION_WORDS, type UploadTicket } from '../api/client';
import { linkClick } from '../router';

const TYPES: Record<string, string> = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', heic: 'image/heic', heif: 'image/heif' };
const PARALLEL = 3;

type State = 'queued' | 'uploading' | 'waiting' | 'ready' | 'duplicate' | 'rejected' | 'failed';
interface Item { n: number; file: File; name: string; state: State; progress: number; message: string; photoId?: string }

const STATE_WORDS: Record<State, string> = {
  queued: 'Queued', uploading: 'Uploading', waiting: 'Checking the photo…', ready: 'Ready',
  duplicate: 'Already in your library', rejected: 'Not accepted', failed: 'Transfer failed',
};

function contentType(file: File): string {
  return file.type || TYPES[file.name.split('.').pop()?.toLowerCase() ?? ''] || 'application/octet-stream';
}

/** The presigned POST with XMLHttpRequest, whose upload events give the progress bar its numbers. */
function postForm(ticket: UploadTicket, file: File, onProgress: (fraction: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(ticket.fields)) form.append(k, String(v));
    form.append('file', file);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', ticket.url);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(s3Message(xhr.responseText) || `storage answered ${xhr.status}`)));
    xhr.onerror = () => reject(new Error('the connection was lost'));
    xhr.send(form);
  });
}

function s3Message(xml: string): string {
  const m = /<Message>([^<]*)<\/Message>/.exec(xml);
  return m ? m[1] : '';
}

async function filesFromDrop(items: DataTransferItemList): Promise<File[]> {
  const out: File[] = [];
  const walk = async (entry: FileSystemEntry | null): Promise<void> => {
    if (!entry) return;
    if (entry.isFile) {
      out.push(await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej)));
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  await Promise.all([...items].map((i) => walk(i.webkitGetAsEntry?.() ?? null)));
  return out;
}

export function Upload() {
  const [items, setItems] = useState<Item[]>([]);
  const [over, setOver] = useState(false);
  const counter = useRef(0);
  const running = useRef(0);
  const queue = useRef<Item[]>([]);

  const update = (n: number, change: Partial<Item>) => setItems((all) => all.map((i) => (i.n === n ? { ...i, ...change } : i)));

  const settle = async (item: Item, photoId: string) => {
    for (let attempt = 0; attempt < 120; attempt++) {
      const p = await photos.get(photoId);
      if (p.status === 'READY') return update(item.n, { state: 'ready', progress: 1, message: '' });
      if (p.status === 'DUPLICATE') return update(item.n, { state: 'duplicate', progress: 1, message: 'This photo is already in your library; it was not added twice.' });
      if (p.status === 'REJECTED') {
        const reason = p.rejection_reason ? REJECTION_WORDS[p.rejection_reason] : '';
        return update(item.n, { state: 'rejected', progress: 1, message: reason || p.rejection_message || 'The photo could not be read.' });
      }
      await new Promise((r) => setTimeout(r, Math.min(250 * (attempt + 1), 1500)));
    }
    update(item.n, { state: 'waiting', message: 'Still being checked; it will appear in the timeline when ready.' });
  };

  const run = async (item: Item) => {
    running.current++;
    update(item.n, { state: 'uploading', progress: 0, message: '' });
    try {
      const ticket = await api.post<UploadTicket>('/uploads', { body: { filename: item.name, content_type: contentType(item.file), size: item.file.size } });
      await postForm(ticket, item.file, (f) => update(item.n, { progress: f }));
      update(item.n, { state: 'waiting', progress: 1, photoId: ticket.photo_id });
      await settle(item, ticket.photo_id);
    } catch (e) {
      if (e instanceof ApiError && e.status >= 400 && e.status < 500) {
        update(item.n, { state: 'rejected', message: REJECTION_WORDS[e.code as keyof typeof REJECTION_WORDS] ?? e.message });
      } else {
        update(item.n, { state: 'failed', message: e instanceof Error ? e.message : 'failed' });
      }
    } finally {
      running.current--;
      pump();
    }
  };

  const pump = () => {
    while (running.current < PARALLEL && queue.current.length) run(queue.current.shift()!);
  };

  const add = (files: Iterable<File>) => {
    const fresh = [...files].filter((f) => !f.name.startsWith('.')).map((file) => ({
      n: ++counter.current, file, name: file.name, state: 'queued' as State, progress: 0, message: '',
    }));
    setItems((all) => [...all, ...fresh]);
    queue.current.push(...fresh);
    pump();
  };

  const retry = (item: Item) => { update(item.n, { state: 'queued', progress: 0, message: '' }); queue.current.push(item); pump(); };

  const onDrop = async (e: DragEvent) => {
    e.preventDefault(); setOver(false);
    if (!e.dataTransfer) return;
    const files = e.dataTransfer.items?.length ? await filesFromDrop(e.dataTransfer.items) : [...e.dataTransfer.files];
    add(files.length ? files : [...e.dataTransfer.files]);
  };

  const done = items.filter((i) => ['ready', 'duplicate', 'rejected'].includes(i.state)).length;
  return (
    <section aria-labelledby="upload-title">
      <h2 id="upload-title">Upload</h2>
      <div class={`drop${over ? ' over' : ''}`} onDragOver={(e) => { e.preventDefault(); setOver(true); }} onDragLeave={() => setOver(false)} onDrop={onDrop}>
        <p>Drop photos or a folder here, or</p>
        <label class="button">Choose photos<input class="visually-hidden" type="file" multiple accept="image/jpeg,image/png,image/webp,image/heic,image/heif,.heic,.heif" onChange={(e) => { add((e.currentTarget as HTMLInputElement).files ?? []); (e.currentTarget as HTMLInputElement).value = ''; }} data-testid="pick-files" /></label>
        <label class="button">Choose a folder<input class="visually-hidden" type="file" multiple {...{ webkitdirectory: '' }} onChange={(e) => add((e.currentTarget as HTMLInputElement).files ?? [])} /></label>
      </div>
      {items.length > 0 && <p role="status" aria-live="polite">{done} of {items.length} done</p>}
      <ul class="uploads">
        {items.map((i) => (
          <li key={i.n} class={`upload ${i.state}`} data-state={i.state}>
            <span class="name" title={i.name}>{i.name}</span>
            <progress max={1} value={i.progress} aria-label={`Upload of ${i.name}`} />
            <span class="state">{STATE_WORDS[i.state]}</span>
            {i.message && <span class="reason">{i.message}</span>}
            {i.state === 'failed' && <button type="button" onClick={() => retry(i)}>Retry</button>}
            {i.photoId && i.state === 'ready' && <a href={`/photo/${encodeURIComponent(i.photoId)}`} onClick={linkClick}>Open</a>}
          </li>
        ))}
      </ul>
    </section>
  );
}
