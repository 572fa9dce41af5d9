// The camera as a frame source (getUserMedia): it always hands out the newest frame and counts
// the frames the camera delivered that nobody took (dropped), as mobilevos live does in Python.

export class CameraError extends Error {}

/** The one-line message for a getUserMedia failure, by the DOMException's name. */
export function cameraMessage(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return (
        'Camera permission was denied: allow the camera for this page in the browser ' +
        '(the icon in the address bar), then press Camera again.'
      );
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera found: connect one and press Camera again, or open a video file.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera could not be started: another program may be using it.';
    default:
      return `The camera could not be opened (${error?.message ?? error}).`;
  }
}

/**
 * A live camera on a <video> element.
 *
 *   const camera = await Camera.open(videoElement);
 *   const { image, index, dropped } = await camera.next();   // ImageData, frame number
 *
 * `index` numbers the frames the camera presented (from 0); `dropped` counts those presented
 * since the previous next() that were never taken. `onEnded` is called once if the camera
 * stops (unplugged, or taken away by the system).
 */
export class Camera {
  constructor(video, stream) {
    this.video = video;
    this.stream = stream;
    this.name = stream.getVideoTracks()[0]?.label || 'camera';
    this.presented = 0; // frames the camera has presented so far
    this.taken = -1; // the index of the last frame handed out
    this.ended = false;
    this.onEnded = null;
    this.waiting = [];
    this.canvas = document.createElement('canvas');
    this.context = this.canvas.getContext('2d', { willReadFrequently: true });
    for (const track of stream.getVideoTracks()) {
      track.addEventListener('ended', () => this.stop(true));
    }
    const count = (_now, metadata) => {
      if (this.ended) return;
      this.presented = metadata.presentedFrames;
      for (const resolve of this.waiting.splice(0)) resolve();
      video.requestVideoFrameCallback(count);
    };
    video.requestVideoFrameCallback(count);
  }

  static async open(video) {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new CameraError(
        'This browser gives the page no camera (getUserMedia needs https or localhost).',
      );
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 } },
        audio: false,
      });
    } catch (error) {
      throw new CameraError(cameraMessage(error));
    }
    video.srcObject = stream;
    try {
      await video.play();
      while (!video.videoWidth) await new Promise((resolve) => setTimeout(resolve, 20));
    } catch (error) {
      for (const track of stream.getTracks()) track.stop();
      throw new CameraError(cameraMessage(error));
    }
    return new Camera(video, stream);
  }

  get width() {
    return this.video.videoWidth;
  }

  get height() {
    return this.video.videoHeight;
  }

  /** The newest frame no one has taken yet (waiting for the camera's next one if needed);
   *  null once the camera has ended. */
  async next() {
    while (!this.ended && this.presented - 1 <= this.taken) {
      await new Promise((resolve) => this.waiting.push(resolve));
    }
    if (this.ended) return null;
    const index = this.presented - 1;
    const dropped = index - this.taken - 1;
    this.taken = index;
    return { image: this.grab(), index, dropped };
  }

  /** The frame on screen now, as ImageData (for the preview; nothing is counted). */
  grab() {
    const { width, height } = this;
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    this.context.drawImage(this.video, 0, 0, width, height);
    return this.context.getImageData(0, 0, width, height);
  }

  /** Release the camera; `lost`: it ended on its own (onEnded is called). */
  stop(lost = false) {
    if (this.ended) return;
    this.ended = true;
    for (const track of this.stream.getTracks()) track.stop();
    this.video.srcObject = null;
    for (const resolve of this.waiting.splice(0)) resolve();
    if (lost && this.onEnded) this.onEnded();
  }
}
