"""Scene edits (the HQ-Edit analogue): exact, because the scene graph is known, and invertible.

An `Edit` replaces one object by another (`old` -> `new`); removing and adding are the cases with
`new` or `old` missing. Its inverse swaps the two, so `edit.inverse().apply(edit.apply(scene)) == scene`
holds exactly, hidden state (orientation, offset) included. Instructions:
  recolour  "make the circle blue"                  (shapes)
  replace   "replace the dog face with a red apple"  (emoji)
  move      "move the square to the bottom right"
  remove    "remove the star"
  add       "add a small green cross in the top left"
The object is named by the shortest phrase that picks it out in the scene being edited (World.refer).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from fuselip.data.world import CELL_NAMES, Obj, Scene, World, article, obj_replace

OPS = ("recolour", "replace", "move", "remove", "add")
INVERSE_OP = {"recolour": "recolour", "replace": "replace", "move": "move", "remove": "add", "add": "remove"}


@dataclass(frozen=True)
class Edit:
    op: str
    old: Obj | None   # the object before the edit (None for add)
    new: Obj | None   # the object after the edit (None for remove)

    def apply(self, scene: Scene) -> Scene:
        return scene.replace(self.old, self.new)

    def inverse(self) -> "Edit":
        return Edit(INVERSE_OP[self.op], self.new, self.old)

    def before(self) -> Obj:
        """The object the edit changes (every op but add has one)."""
        if self.old is None:
            raise ValueError(f"this {self.op!r} edit has no object before it")
        return self.old

    def after(self) -> Obj:
        """The object the edit makes (every op but remove has one)."""
        if self.new is None:
            raise ValueError(f"this {self.op!r} edit has no object after it")
        return self.new

    def text(self, world: World, scene: Scene) -> str:
        """The instruction, phrased for `scene` (the scene before the edit)."""
        if self.op == "add":
            p = world.phrase(self.after())
            return f"add {article(p)} {p} in the {CELL_NAMES[self.after().cell]}"
        ref = world.refer(scene, self.before())
        if self.op == "remove":
            return f"remove the {ref}"
        if self.op == "move":
            return f"move the {ref} to the {CELL_NAMES[self.after().cell]}"
        if self.op == "recolour":
            return f"make the {ref} {self.after().colour}"
        if self.op == "replace":
            return f"replace the {ref} with {article(self.after().name)} {self.after().name}"
        raise ValueError(f"unknown edit op {self.op!r}")


def world_ops(world: World) -> tuple[str, ...]:
    """Edit kinds a world supports: recolour where objects have colours, replace otherwise."""
    first = "recolour" if world.colours() else "replace"
    return (first, "move", "remove", "add")


def sample_edit(world: World, scene: Scene, rng: random.Random, split: str, op: str) -> Edit | None:
    """A random edit of kind `op` that is possible on `scene` (None if it is not: e.g. no free cell)."""
    cfg = world.config
    if op == "add":
        free = scene.free_cells()
        if len(scene.objects) >= cfg.max_objects or not free:
            return None
        return Edit("add", None, world.sample_object(rng, split, rng.choice(free)))
    if not scene.objects:
        return None
    old = rng.choice(scene.objects)
    if op == "remove":
        return Edit("remove", old, None) if len(scene.objects) > cfg.min_objects else None
    if op == "move":
        free = scene.free_cells()
        return Edit("move", old, obj_replace(old, cell=rng.choice(free))) if free else None
    if op == "recolour":
        colours = [c for c in world.colours() if c != old.colour]
        return Edit("recolour", old, obj_replace(old, colour=rng.choice(colours))) if colours else None
    if op == "replace":
        used = {o.name for o in scene.objects}
        names = [n for n in world.names(split) if n not in used]
        if not names:
            return None
        name = rng.choice(names)
        return Edit("replace", old, obj_replace(old, name=name, angle=old.angle % world.symmetry(name)))
    raise ValueError(f"unknown edit op {op!r}; known: {', '.join(OPS)}")
