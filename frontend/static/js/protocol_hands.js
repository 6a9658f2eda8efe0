// The guided protocol's two hands in one three.js view: the target gesture (blue),
// animated from pose to pose, and the live camera-derived label from the agent
// (orange) beside it. Target poses come from the server as 21 joints in mm
// (webapp/recordings/runner.py); poses in between are blended joint by joint.
import { HandView } from "./hand_renderer.js";

const LABEL_OFFSET_MM = 220; // the label hand stands this far right of the target
const TRANSITION_S = 0.6; // time to move into a phase's pose
const PREVIEW_S = 1.0; // the end of a rest shows the coming gesture
const TOUR_POSE_S = 1.6; // a free-movement step moves to a new pose this often

function blend(from, to, fraction) {
  const t = Math.min(Math.max(fraction, 0), 1);
  const eased = t * t * (3 - 2 * t); // smoothstep: no jolt at either end
  return from.map((value, i) => value + (to[i] - value) * eased);
}

export class ProtocolHands {
  constructor(container, runner) {
    // the hand model is a right hand; a band on the left arm gets its mirror image
    const sign = runner.mirror ? -1 : 1;
    this.targets = Object.fromEntries(Object.entries(runner.targets_mm).map(
      ([name, joints]) => [name, joints.map((v, i) => (i % 3 === 0 ? sign * v : v))]));
    this.tour = runner.free_movement_tour;
    this.view = new HandView(container);
    this.target = this.view.addHand({ color: 0x2f6fed });
    this.label = this.view.addHand({ color: 0xe07b39, offsetMm: [LABEL_OFFSET_MM, 0, 0] });
    this.label.visible = false;
    this.view.frame([0, LABEL_OFFSET_MM]);
    this.shown = this.targets.rest.slice();
    this.fromPose = this.shown;
    this.target.setJoints(this.shown);
    this.dirty = true;
    this.view.start(() => {
      const changed = this.dirty;
      this.dirty = false;
      return changed;
    });
  }

  /** A new phase begins: its animation starts from the pose shown now. */
  enterPhase() {
    this.fromPose = this.shown.slice();
  }

  /** Show the target for `phase` (see protocol_runner.js) `elapsedS` into it. */
  update(phase, elapsedS) {
    this.shown = this.poseAt(phase, elapsedS);
    this.target.setJoints(this.shown);
    this.dirty = true;
  }

  poseAt(phase, elapsedS) {
    const gesture = this.targets[phase.step.gesture];
    if (phase.type === "rest") {
      const rested = blend(this.fromPose, this.targets.rest, elapsedS / TRANSITION_S);
      const preview = Math.min(PREVIEW_S, phase.durationS / 2);
      const remaining = phase.durationS - elapsedS;
      return blend(rested, gesture, 1 - remaining / preview);
    }
    if (!phase.step.free_movement) return blend(this.fromPose, gesture, elapsedS / TRANSITION_S);
    return this.tourPose(elapsedS);
  }

  tourPose(elapsedS) {
    const k = Math.floor(elapsedS / TOUR_POSE_S);
    const from = k === 0 ? this.fromPose : this.targets[this.tour[(k - 1) % this.tour.length]];
    const to = this.targets[this.tour[k % this.tour.length]];
    return blend(from, to, elapsedS / TOUR_POSE_S - k);
  }

  /** A "live.labels" message: show the newest valid camera frame. */
  showLabels(message) {
    const frames = (message.frames || []).filter((frame) => frame.valid);
    if (!frames.length) return false;
    this.label.setJoints(frames[frames.length - 1].joints);
    this.label.visible = true;
    this.dirty = true;
    return true;
  }
}
