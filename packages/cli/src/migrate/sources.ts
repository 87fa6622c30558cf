/**
 * What `migrate` works on: a directory (walked recursively), a glob (`data/**\/*.enc`), a
 * manifest (a text file with one path per line, relative to the manifest), or one message.
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { KeyportError } from '@keyport/core';

const GLOB_CHARS = /[*?[]/;

export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '*' && pattern[i + 1] === '*') {
      const slash = pattern[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

async function walk(dir: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await walk(p, out);
    else if (e.isFile()) out.push(p);
  }
}

async function firstByte(path: string): Promise<number | undefined> {
  const h = await open(path, 'r');
  try {
    const b = Buffer.alloc(1);
    const { bytesRead } = await h.read(b, 0, 1, 0);
    return bytesRead === 1 ? b[0] : undefined;
  } finally {
    await h.close();
  }
}

/** Absolute paths of the files `target` names, sorted, without `exclude`d ones. */
export async function expandTarget(
  target: string,
  cwd: string,
  exclude: (path: string) => boolean,
): Promise<string[]> {
  const abs = isAbsolute(target) ? target : resolve(cwd, target);
  let files: string[] = [];
  if (GLOB_CHARS.test(target)) {
    const parts = abs.split(sep);
    const firstGlob = parts.findIndex((p) => GLOB_CHARS.test(p));
    const base = parts.slice(0, firstGlob).join(sep) || sep;
    const re = globToRegExp(parts.slice(firstGlob).join('/'));
    const all: string[] = [];
    await walk(base, all).catch((e: unknown) => {
      throw new KeyportError('NotFound', `the glob's directory ${base} cannot be read`, { cause: e });
    });
    files = all.filter((p) => re.test(relative(base, p).split(sep).join('/')));
  } else {
    const st = await stat(abs).catch((e: unknown) => {
      throw new KeyportError('NotFound', `${abs} does not exist`, { cause: e });
    });
    if (st.isDirectory()) await walk(abs, files);
    else {
      const b = await firstByte(abs);
      if (b === 0x01 || b === 0x02) files = [abs];
      else {
        const text = await readFile(abs, 'utf8');
        files = text
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '' && !l.startsWith('#'))
          .map((l) => (isAbsolute(l) ? l : resolve(dirname(abs), l)));
      }
    }
  }
  return [...new Set(files)].filter((f) => !exclude(f)).sort();
}
