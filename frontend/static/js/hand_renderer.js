// A three.js view of hands given as 21 joints (MediaPipe order, millimetres, wrist
// at the origin), drawn as a stylized hand: tapered capsule fingers, rounded joints
// and a shaded palm slab spanning the wrist, the thumb's CMC and the four MCPs.
// When the server can supply MANO's mesh, a hand draws that instead (setMesh).
// Reusable: recording, session review and live tracking each make a HandView on a
// container element and add the hands they show.
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
export const MANO_VERTEX_COUNT = 778;

// The palm's outline, around its edge: wrist, thumb CMC, index..pinky MCP.
const PALM_RING = [0, 1, 5, 9, 13, 17];
const PALM_HALF_THICKNESS_MM = 11;
// Finger segments, base to tip, with their radii (mm): a real finger tapers.
const FINGER_SEGMENTS = [
  { joints: [1, 2, 3, 4], radiiMm: [10.5, 9, 8] }, // thumb
  { joints: [5, 6, 7, 8], radiiMm: [8.5, 7.5, 6.5] }, // index
  { joints: [9, 10, 11, 12], radiiMm: [9, 8, 7] }, // middle
  { joints: [13, 14, 15, 16], radiiMm: [8.5, 7.5, 6.5] }, // ring
  { joints: [17, 18, 19, 20], radiiMm: [7.5, 6.5, 5.5] }, // pinky
];
const CAPSULE_STEP_MM = 1; // capsule lengths are rounded to this to share geometry
const UP = new THREE.Vector3(0, 1, 0);

// Each capsule's straight part spans one bone; its rounded ends sit on the joints.
// Geometry is shared by every capsule of the same radius and (rounded) length, so
// a hand whose bone lengths change builds each length once.
const capsules = new Map();

function capsuleGeometry(radiusMm, lengthMm) {
  const key = `${radiusMm}:${lengthMm}`;
  if (!capsules.has(key)) capsules.set(key, new THREE.CapsuleGeometry(radiusMm, lengthMm, 4, 12));
  return capsules.get(key);
}

const unitSphere = new THREE.SphereGeometry(1, 16, 12);

/** (bone [a, b], radius) pairs: the fingers and the palm's rim. */
function handBones() {
  const bones = [];
  for (const { joints, radiiMm } of FINGER_SEGMENTS) {
    radiiMm.forEach((radiusMm, i) => bones.push({ a: joints[i], b: joints[i + 1], radiusMm }));
  }
  PALM_RING.forEach((joint, i) => {
    bones.push({ a: joint, b: PALM_RING[(i + 1) % PALM_RING.length], radiusMm: PALM_HALF_THICKNESS_MM });
  });
  return bones;
}

/** Each joint's sphere: a little wider than the widest capsule meeting there. */
function jointRadiiMm(bones) {
  const radii = new Array(NUM_JOINTS).fill(0);
  for (const { a, b, radiusMm } of bones) {
    radii[a] = Math.max(radii[a], radiusMm);
    radii[b] = Math.max(radii[b], radiusMm);
  }
  return radii.map((radius, joint) => (PALM_RING.includes(joint) ? radius : radius * 1.06));
}

/** One hand, placed at `offsetMm`: a stylized hand from joints, or MANO's mesh.
 *  `opacity` below 1 makes it see-through (e.g. a label hand behind a prediction). */
export class HandModel {
  constructor(scene, { color = 0x2f6fed, offsetMm = [0, 0, 0], opacity = 1 } = {}) {
    this.group = new THREE.Group();
    this.group.position.set(...offsetMm);
    this.skeleton = new THREE.Group();
    this.group.add(this.skeleton);
    this.skin = new THREE.MeshStandardMaterial({ roughness: 0.55, metalness: 0.05 });
    this.knuckles = new THREE.MeshStandardMaterial({ roughness: 0.45, metalness: 0.05 });
    this.palmSkin = new THREE.MeshStandardMaterial({ roughness: 0.6, metalness: 0.05, side: THREE.DoubleSide });
    this.setStyle({ color, opacity });
    this.boneSpecs = handBones();
    this.bones = this.boneSpecs.map(() => this.addPart(new THREE.Mesh(capsuleGeometry(1, 1), this.skin)));
    this.joints = jointRadiiMm(this.boneSpecs).map((radiusMm) => {
      const sphere = this.addPart(new THREE.Mesh(unitSphere, this.knuckles));
      sphere.scale.setScalar(radiusMm);
      return sphere;
    });
    this.palm = new PalmSlab(this.palmSkin);
    this.addPart(this.palm.mesh);
    this.points = Array.from({ length: NUM_JOINTS }, () => new THREE.Vector3());
    this.mesh = null; // MANO's, once setMesh is called
    scene.add(this.group);
  }

  addPart(mesh) {
    this.skeleton.add(mesh);
    return mesh;
  }

  set visible(value) {
    this.group.visible = value;
  }

  /** Recolours the hand; opacity below 1 makes it see-through. */
  setStyle({ color, opacity = 1 }) {
    const base = new THREE.Color(color);
    const darker = base.clone().offsetHSL(0, 0.02, -0.08);
    for (const [material, tint] of [[this.skin, base], [this.palmSkin, base], [this.knuckles, darker]]) {
      material.color.copy(tint);
      material.opacity = opacity;
      // see-through or not is compiled into the shader: recompile only on a change
      if (material.transparent !== opacity < 1) material.needsUpdate = true;
      material.transparent = opacity < 1;
      material.depthWrite = opacity >= 1;
    }
  }

  /** joints: 63 numbers (mm), MediaPipe order. */
  setJoints(joints) {
    if (!joints || joints.length !== NUM_JOINTS * 3) {
      throw new Error(`a hand needs ${NUM_JOINTS * 3} joint coordinates, got ${joints?.length}`);
    }
    this.points.forEach((point, j) => point.set(joints[3 * j], joints[3 * j + 1], joints[3 * j + 2]));
    this.joints.forEach((mesh, j) => mesh.position.copy(this.points[j]));
    this.boneSpecs.forEach(({ a, b, radiusMm }, i) => {
      placeCapsule(this.bones[i], radiusMm, this.points[a], this.points[b]);
    });
    this.palm.update(this.points);
  }

  /** Draws MANO's mesh instead of the stylized hand. vertices: 778 × 3 numbers (mm,
   *  wrist at the origin, like the joints); faces: triangles as vertex index
   *  triples, needed on the first call only (MANO's topology never changes). */
  setMesh(vertices, faces = null) {
    if (!vertices || vertices.length !== MANO_VERTEX_COUNT * 3) {
      throw new Error(`a MANO mesh needs ${MANO_VERTEX_COUNT * 3} vertex coordinates, got ${vertices?.length}`);
    }
    if (!this.mesh && !faces) throw new Error("the first MANO mesh needs its faces");
    if (!this.mesh) {
      const geometry = new THREE.BufferGeometry();
      geometry.setAttribute("position", new THREE.Float32BufferAttribute(MANO_VERTEX_COUNT * 3, 3));
      this.mesh = new THREE.Mesh(geometry, this.skin);
      this.group.add(this.mesh);
    }
    const geometry = this.mesh.geometry;
    if (faces) geometry.setIndex(Array.from(faces));
    geometry.attributes.position.array.set(vertices);
    geometry.attributes.position.needsUpdate = true;
    geometry.computeVertexNormals();
    geometry.computeBoundingSphere();
    this.mesh.visible = true;
    this.skeleton.visible = false;
  }

  /** Back to the stylized hand after setMesh. */
  clearMesh() {
    if (this.mesh) this.mesh.visible = false;
    this.skeleton.visible = true;
  }
}

const direction = new THREE.Vector3();

function placeCapsule(mesh, radiusMm, from, to) {
  direction.subVectors(to, from);
  const lengthMm = direction.length();
  mesh.visible = lengthMm > 1e-3;
  if (!mesh.visible) return;
  const roundedMm = Math.max(CAPSULE_STEP_MM, Math.round(lengthMm / CAPSULE_STEP_MM) * CAPSULE_STEP_MM);
  mesh.geometry = capsuleGeometry(radiusMm, roundedMm);
  mesh.position.addVectors(from, to).multiplyScalar(0.5);
  // the last fraction of a millimetre by scaling: too little to bend the caps
  mesh.scale.set(1, (lengthMm + 2 * radiusMm) / (roundedMm + 2 * radiusMm), 1);
  mesh.quaternion.setFromUnitVectors(UP, direction.divideScalar(lengthMm));
}

/** The palm between its rim capsules: a top and a bottom face over the ring of
 *  palm joints, each fanned from a centre that bulges a little, as a palm does. */
class PalmSlab {
  constructor(material) {
    const ring = PALM_RING.length;
    // per face: the ring, then its centre
    this.positions = new Float32Array(2 * (ring + 1) * 3);
    const indices = [];
    for (let face = 0; face < 2; face++) {
      const first = face * (ring + 1);
      const centre = first + ring;
      for (let i = 0; i < ring; i++) {
        const [a, b] = [first + i, first + ((i + 1) % ring)];
        indices.push(...(face === 0 ? [centre, a, b] : [centre, b, a]));
      }
    }
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute("position", new THREE.BufferAttribute(this.positions, 3));
    geometry.setIndex(indices);
    this.mesh = new THREE.Mesh(geometry, material);
    this.normal = new THREE.Vector3();
    this.centre = new THREE.Vector3();
    this.across = new THREE.Vector3();
  }

  update(points) {
    const [wrist, , indexMcp] = PALM_RING.map((j) => points[j]);
    const pinkyMcp = points[PALM_RING[PALM_RING.length - 1]];
    this.across.subVectors(indexMcp, wrist);
    this.normal.subVectors(pinkyMcp, wrist).cross(this.across).normalize();
    this.centre.set(0, 0, 0);
    PALM_RING.forEach((j) => this.centre.add(points[j]));
    this.centre.divideScalar(PALM_RING.length);
    const ring = PALM_RING.length;
    for (let face = 0; face < 2; face++) {
      const side = face === 0 ? 1 : -1;
      const first = face * (ring + 1);
      // just inside the rim capsules' surface, so the two blend into one edge
      const rimOffset = side * PALM_HALF_THICKNESS_MM * 0.92;
      PALM_RING.forEach((j, i) => this.setPoint(first + i, points[j], rimOffset));
      this.setPoint(first + ring, this.centre, side * PALM_HALF_THICKNESS_MM * 1.2);
    }
    const geometry = this.mesh.geometry;
    geometry.attributes.position.needsUpdate = true;
    geometry.computeVertexNormals();
    geometry.computeBoundingSphere();
  }

  setPoint(vertex, point, offsetMm) {
    this.positions[3 * vertex] = point.x + this.normal.x * offsetMm;
    this.positions[3 * vertex + 1] = point.y + this.normal.y * offsetMm;
    this.positions[3 * vertex + 2] = point.z + this.normal.z * offsetMm;
  }
}

/** True when WebGL runs on the CPU (SwiftShader, llvmpipe): no GPU to draw with. */
function softwareWebgl() {
  const gl = document.createElement("canvas").getContext("webgl2");
  const info = gl?.getExtension("WEBGL_debug_renderer_info");
  const name = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
  gl?.getExtension("WEBGL_lose_context")?.loseContext();
  return /swiftshader|llvmpipe|software/i.test(name);
}

/** The scene, camera, lights and orbit controls around a container element. */
export class HandView {
  constructor(container, { background = 0xf0f3f8, preserveDrawingBuffer = false } = {}) {
    this.container = container;
    // multisampling costs software WebGL (no GPU) more than the whole hand does
    const antialias = !softwareWebgl();
    this.renderer = new THREE.WebGLRenderer({ antialias, preserveDrawingBuffer });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.renderer.toneMapping = THREE.ACESFilmicToneMapping;
    container.appendChild(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(background);
    this.addLights();
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

  // A soft sky/ground fill, a warm key light from the upper front, and a cool rim
  // light from behind so the hand's outline reads against the background.
  addLights() {
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x9a8f85, 1.6));
    const key = new THREE.DirectionalLight(0xfff4e8, 2.4);
    key.position.set(180, 320, 420);
    this.scene.add(key);
    const rim = new THREE.DirectionalLight(0xdde8ff, 1.1);
    rim.position.set(-260, 120, -320);
    this.scene.add(rim);
  }

  addHand(options) {
    const hand = new HandModel(this.scene, options);
    this.hands.push(hand);
    this.needsRender = true;
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
