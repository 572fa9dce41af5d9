// Frames of a video file, one at a time, from a <video> element: the element is paused and
// seeked to the middle of each frame's display interval, and the frame it then presents is
// drawn to a canvas and read back as RGBA bytes. Seeking, not playing, so that no frame is
// skipped however long the model takes, and frame i is the same frame on every run.
//
// A <video> element does not tell the frame rate. It is measured once on opening: the element
// plays (muted) for a few frames and requestVideoFrameCallback reports each presented frame's
// media time; the shortest step between two is one frame. Every failure (not a video, a codec
// the browser cannot decode, a file that never becomes playable) is a VideoError with a plain
// message for the page.

export class VideoError extends Error {}

const LOAD_TIMEOUT_MS = 15000;
const SEEK_TIMEOUT_MS = 10000;
const PROBE_FRAMES = 8;
const PROBE_TIMEOUT_MS = 4000;
const FALLBACK_FPS = 25;
const PRESENT_WAIT_MS = 150;

const MEDIA_ERRORS = {
  1: 'loading was aborted',
  2: 'a network error stopped the download',
  3: 'the browser could not decode it (a damaged file, or a codec it does not support)',
  4: 'the browser cannot play this file: it is not a video, or its codec is not supported ' +
    '(try an mp4 with H.264 or a webm with VP8/VP9)',
};

/** Resolve with the first of `events` on `target` (or reject on its error / after `ms`). */
function once(target, events, ms, timeoutMessage) {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      for (const e of events) target.removeEventListener(e, onEvent);
      target.removeEventListener('error', onError);
    };
    const onEvent = (event) => {
      cleanup();
      resolve(event);
    };
    const onError = () => {
      cleanup();
      reject(mediaError(target));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new VideoError(timeoutMessage));
    }, ms);
    for (const e of events) target.addEventListener(e, onEvent);
    target.addEventListener('error', onError);
  });
}

function mediaError(video) {
  const code = video.error ? video.error.code : 0;
  return new VideoError(`Cannot open the video: ${MEDIA_ERRORS[code] ?? 'unknown error'}.`);
}

const COMMON_RATES = [12, 15, 24000 / 1001, 24, 25, 30000 / 1001, 30, 48, 50, 60000 / 1001, 60];

/** Frames per second from the steps between presented frames: the mean of the one-frame steps
 *  (media times are often rounded to the millisecond: 83, 83, 84 ms at 12 fps), snapped to a
 *  common rate within 0.5%, so that seeking stays on frame centres through long videos. */
export function frameRate(steps) {
  const shortest = Math.min(...steps);
  const single = steps.filter((s) => s < 1.5 * shortest);
  const fps = single.length / single.reduce((a, b) => a + b, 0);
  const near = COMMON_RATES.find((rate) => Math.abs(rate - fps) < 0.005 * rate);
  return near ?? fps;
}

export class VideoFrames {
  constructor(video, name) {
    this.video = video;
    this.name = name;
    this.width = video.videoWidth;
    this.height = video.videoHeight;
    this.canvas = document.createElement('canvas');
    this.canvas.width = this.width;
    this.canvas.height = this.height;
    this.context = this.canvas.getContext('2d', { willReadFrequently: true });
    this.fps = FALLBACK_FPS;
    this.fpsMeasured = false;
    this.count = 0;
    this.lastTime = null;
  }

  /** Open `src` (a URL) in `video`; resolves once the first frame can be drawn. */
  static async open(video, src, name) {
    video.muted = true;
    video.playsInline = true;
    video.preload = 'auto';
    video.removeAttribute('src');
    video.load();
    video.src = src;
    await once(
      video,
      ['loadeddata'],
      LOAD_TIMEOUT_MS,
      `The video did not load within ${LOAD_TIMEOUT_MS / 1000} s: the browser may not be able ` +
        'to decode it (try an mp4 with H.264 or a webm with VP8/VP9).',
    );
    if (!video.videoWidth || !video.videoHeight) {
      throw new VideoError('This file has no picture (an audio file?): open a video.');
    }
    const frames = new VideoFrames(video, name);
    await frames.measure();
    return frames;
  }

  /** Measure the frame rate, then count the frames (the first one is taken to start at 0). */
  async measure() {
    const video = this.video;
    const times = [];
    if ('requestVideoFrameCallback' in video) {
      try {
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, PROBE_TIMEOUT_MS);
          const onFrame = (_now, meta) => {
            times.push(meta.mediaTime);
            if (times.length >= PROBE_FRAMES || video.ended) {
              clearTimeout(timer);
              resolve();
            } else {
              video.requestVideoFrameCallback(onFrame);
            }
          };
          video.requestVideoFrameCallback(onFrame);
          video.play().catch(() => resolve());
        });
      } finally {
        video.pause();
      }
    }
    const steps = [];
    for (let i = 1; i < times.length; i++) {
      if (times[i] - times[i - 1] > 1e-4) steps.push(times[i] - times[i - 1]);
    }
    if (steps.length) {
      this.fps = frameRate(steps);
      this.fpsMeasured = true;
    }
    const duration = Number.isFinite(video.duration) ? video.duration : 0;
    this.count = Math.max(1, Math.round(duration * this.fps));
    if (this.count > 1) {
      // The duration may include a longer audio track: look at the last frame now, so the
      // count shown is right (frame() drops a last frame that repeats the one before).
      await this.frame(this.count - 2);
      await this.frame(this.count - 1);
    }
  }

  /** Seek to frame `index`; resolves with the media time of the frame it presents, or null
   *  when it presents none (a seek within the frame already shown). */
  async seek(index) {
    const video = this.video;
    const time = (index + 0.5) / this.fps;
    let presented = null;
    const shown = new Promise((resolve) => {
      if (!('requestVideoFrameCallback' in video)) return;
      video.requestVideoFrameCallback((_now, meta) => {
        presented = meta.mediaTime;
        resolve();
      });
    });
    const seeked = once(
      video,
      ['seeked'],
      SEEK_TIMEOUT_MS,
      `The video stopped answering while seeking to frame ${index}.`,
    );
    video.currentTime = Math.min(time, Math.max(0, video.duration - 1e-3));
    await seeked;
    await Promise.race([shown, new Promise((r) => setTimeout(r, PRESENT_WAIT_MS))]);
    return presented;
  }

  /** Frame `index` as ImageData (RGBA bytes at the video's size), or null past the last frame.
   *  The count comes from the duration, which may include a longer audio track: a last frame
   *  that shows nothing new (the same media time, or no new frame at all) is no frame. */
  async frame(index) {
    const time = await this.seek(index);
    const watched = 'requestVideoFrameCallback' in this.video;
    const repeated = time !== null ? time === this.lastTime : watched;
    if (index > 0 && index === this.count - 1 && repeated) {
      this.count = index;
      return null;
    }
    this.lastTime = time;
    this.context.drawImage(this.video, 0, 0, this.width, this.height);
    return this.context.getImageData(0, 0, this.width, this.height);
  }
}
