// The objects berthd's metadata database holds per namespace, shaped as containerd's images.Image,
// containers.Container, leases.Lease and namespaces.
import type { Descriptor } from '../../content/types.ts';

/** A protobuf google.protobuf.Any, kept as bytes (runtime options, OCI spec, extensions). */
export interface Any {
  typeUrl: string;
  value: Uint8Array;
}

export interface Image {
  name: string;
  labels: Record<string, string>;
  target: Descriptor;
  createdAt: Date;
  updatedAt: Date;
}

export interface Container {
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime: { name: string; options?: Any };
  spec?: Any;
  snapshotter: string;
  snapshotKey: string;
  extensions: Record<string, Any>;
  sandbox: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface Lease {
  id: string;
  labels: Record<string, string>;
  createdAt: Date;
}

/** A resource a lease keeps alive: type "content" (id = digest), "ingests" (id = ref) or "snapshots/<snapshotter>" (id = key). */
export interface LeaseResource {
  id: string;
  type: string;
}

export interface Namespace {
  name: string;
  labels: Record<string, string>;
}

/** Well-known labels the garbage collector reads, as containerd's. */
export const GcLabels = {
  root: 'containerd.io/gc.root',
  expire: 'containerd.io/gc.expire',
  refContent: 'containerd.io/gc.ref.content',
  refSnapshot: 'containerd.io/gc.ref.snapshot.',
} as const;
