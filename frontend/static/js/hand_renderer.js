// A three.js view of hands given as 21 joints (MediaPipe order, millimetres, wrist
// at the origin): spheres for the joints, cylinders for the bones. Reusable: any
// page makes a HandView on a container element and adds the hands it shows.
//
//   const view = new HandView(container);
//   const predicted = view.addHand({ color: 0x2f6fed });
//   predicted.setJoints(joints63);   // 63 numbers: x, y, z of joint 0, 1, ...
//   view.render();                   // or view.start() for a render loop
import * as THREE from "three";
import { OrbitControls } from "three/addons/OrbitControls.js";

export const NUM_JOINTS = 21;
// MediaPipe's hand: wrist; thumb CMC, MCP, IP, tip; index MCP, PIP, DIP, tip;
// middle, ring, pinky likewise. Each pair is one bone.
export const BONES = [
  [0, 1], [1, 2], [2, 3], [3, 4],
  [0, 5], [5, 6], [6, 7], [7, 8],
  [0, 9], [9, 10], [10, 11], [11, 12],
  [0, 13], [13, 14], [14, 15], [15, 16],
  [0, 17], [17, 18], [18, 19], [19, 20],
  [5, 9], [9, 13], [13, 17],
];
const JOINT_RADIUS_MM = 5;
const BONE_RADIUS_MM = 3;
const UP = new THREE.Vector3(0, 1, 0);

/** One hand: 21 joint spheres and the bones between them, placed at `offsetMm`. */
export class HandModel {
  constructor(scene, { color = 0x2f6fed, offsetMm = [0, 0, 0] } = {}) {
    this.group = new THREE.Group();
    this.group.position.set(...offsetMm);
    const material = new THREE.MeshStandardMaterial({ color, roughness: 0.55 });
    const boneMaterial = new THREE.MeshStandardMaterial({ color, roughness: 0.7, transparent: true, opacity: 0.8 });
    const sphere = new THREE.SphereGeometry(JOINT_RADIUS_MM, 16, 12);
    // unit-length cylinder along y, scaled to each bone's length
    const cylinder = new THREE.CylinderGeometry(BONE_RADIUS_MM, BONE_RADIUS_MM, 1, 10);
    this.joints = Array.from({ length: NUM_JOINTS }, () => this.add(new THREE.Mesh(sphere, material)));
    this.bones = BONES.map(() => this.add(new THREE.Mesh(cylinder, boneMaterial)));
    this.points = Array.from({ length: NUM_JOINTS }, () => new THREE.Vector3());
    scene.add(this.group);
  }

  add(mesh) {
    this.group.add(mesh);
    return mesh;
  }

  set visible(value) {
    this.group.visible = value;
  }

  /** joints: 63 numbers (mm), MediaPipe order. */
  setJoints(joints) {
    if (!joints || joints.length !== NUM_JOINTS * 3) {
      throw new Error(`a hand needs ${NUM_JOINTS * 3} joint coordinates, got ${joints?.length}`);
    }
    this.points.forEach((point, j) => point.set(joints[3 * j], joints[3 * j + 1], joints[3 * j + 2]));
    this.joints.forEach((mesh, j) => mesh.position.copy(this.points[j]));
    BONES.forEach(([a, b], i) => placeBone(this.bones[i], this.points[a], this.points[b]));
  }
}

const direction = new THREE.Vector3();

function placeBone(mesh, from, to) {
  direction.subVectors(to, from);
  const length = direction.length();
  mesh.visible = length > 1e-3;
  if (!mesh.visible) return;
  mesh.position.addVectors(from, to).multiplyScalar(0.5);
  mesh.scale.set(1, length, 1);
  mesh.quaternion.setFromUnitVectors(UP, direction.divideScalar(length));
}

/** The scene, camera, lights and orbit controls around a container element. */
export class HandView {
  constructor(container, { background = 0xf0f3f8, preserveDrawingBuffer = false } = {}) {
    this.container = container;
    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    container.appendChild(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(background);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x8890a0, 2.2));
    const light = new THREE.DirectionalLight(0xffffff, 1.6);
    light.position.set(150, 300, 400);
    this.scene.add(light);
    // millimetres: the fingers point along +y, the palm faces the camera
    this.camera = new THREE.PerspectiveCamera(40, 1, 1, 5000);
    this.camera.position.set(0, 90, 420);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.target.set(0, 90, 0);
    this.controls.update();
    // draw only when something changed: software WebGL costs a core at 60 frames/s
    this.needsRender = true;
    this.controls.addEventListener("change", () => { this.needsRender = true; });
    this.hands = [];
    this.resize();
    new ResizeObserver(() => this.resize()).observe(container);
  }

  addHand(options) {
    const hand = new HandModel(this.scene, options);
    this.hands.push(hand);
    return hand;
  }

  /** Look at the middle of the hands placed at these x offsets (mm). */
  frame(offsetsMm) {
    const middle = (Math.min(...offsetsMm) + Math.max(...offsetsMm)) / 2;
    const spread = Math.max(...offsetsMm) - Math.min(...offsetsMm);
    this.controls.target.set(middle, 90, 0);
    this.camera.position.set(middle, 90, 420 + spread);
    this.controls.update();
    this.needsRender = true;
  }

  resize() {
    const width = this.container.clientWidth || 640;
    const height = this.container.clientHeight || 480;
    this.renderer.setSize(width, height);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.needsRender = true;
  }

  render() {
    this.renderer.render(this.scene, this.camera);
  }

  /** Render at the display's frame rate, when something changed:
   *  `beforeRender(nowMs)` updates the hands and returns true when it did. */
  start(beforeRender = () => false) {
    const loop = (nowMs) => {
      if (beforeRender(nowMs) || this.needsRender) {
        this.needsRender = false;
        this.render();
      }
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }
}
