"""Operators: import a HandMotion, reconstruct through the backend, switch
raw/clean, start and check the backend.

The reconstruction operator is a thin shell around :class:`..jobs.JobRunner`:
a modal timer polls the runner and applies the result on the main thread, so
Blender never blocks on the network.  Headless (``bpy.app.background``, where
modal timers never fire) it waits for the job synchronously.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from .. import backend_env
from ..client import Client, ClientError
from ..core.handmotion import HandMotionError
from ..core.names import datablock_prefix
from ..jobs import JobRunner, recent_jobs
from . import preferences, scene as scene_writer
from .compat import PATH_OPTIONS
from .props import job_options

#: The one job that may run at a time (the panel's Cancel button reaches it here).
_active_runner: JobRunner | None = None
#: Backend processes started by this session.
_backend_processes: list = []


def _client(context) -> Client:
    prefs = preferences.get(context)
    if prefs is None:
        return Client()
    return Client(prefs.backend_url, bpy.path.abspath(prefs.token_file) if prefs.token_file else None)


def _report_import(op, result) -> None:
    for w in result.warnings:
        op.report({'WARNING'}, w)
    hands = ", ".join(sorted(result.armatures)) or "no hands"
    op.report({'INFO'}, f"LAGC-Hand: imported {hands} into collection '{result.collection.name}'")


class LAGCHAND_OT_import_motion(bpy.types.Operator, ImportHelper):
    """Import a LAGC-Hand motion file as armatures, skinned meshes and a camera"""

    bl_idname = "lagc_hand.import_motion"
    bl_label = "Import HandMotion"
    bl_options = {'REGISTER', 'UNDO'}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={'HIDDEN'})
    variant: EnumProperty(name="Motion", items=[('clean', "Cleaned", ""), ('raw', "Raw", "")], default='clean')
    low_confidence: FloatProperty(name="Low confidence", default=0.5, min=0.0, max=1.0)
    camera: BoolProperty(name="Camera", default=True, description="Create a camera matching the video")
    limit_influences: BoolProperty(name="4 bone influences", default=False,
                                   description="Keep each vertex's 4 largest skin weights (for game engines)")
    video_path: StringProperty(name="Video", subtype='FILE_PATH', default="",
                               options=PATH_OPTIONS,
                               description="Source video for the camera background (empty: from the file)")

    def execute(self, context):
        path = bpy.path.abspath(self.filepath)
        name = datablock_prefix(os.path.splitext(os.path.basename(path))[0])
        options = scene_writer.ImportOptions(
            name=name, variant=self.variant, low_confidence=self.low_confidence, camera=self.camera,
            video_path=bpy.path.abspath(self.video_path) if self.video_path else None,
            max_influences=4 if self.limit_influences else 0)
        try:
            result = scene_writer.import_motion_file(path, options, context.scene)
        except HandMotionError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        context.scene.lagc_hand.variant = self.variant
        _report_import(self, result)
        return {'FINISHED'}


def _video_path(context) -> str:
    s = context.scene.lagc_hand
    if s.source_type == 'CLIP':
        if s.clip is None:
            raise ClientError("Choose a Movie Clip to reconstruct")
        return bpy.path.abspath(s.clip.filepath, library=s.clip.library)
    if not s.video_path:
        raise ClientError("Choose a video file to reconstruct")
    return bpy.path.abspath(s.video_path)


class _JobOperator:
    """A backend job seen through to its import: a modal timer polls the runner in
    the UI, headless execute() waits.  Subclasses make the runner (_make_runner).

    The job runs for minutes; only its last step (the import, on the main thread)
    changes the scene, and the undo step is pushed when the operator finishes, so
    Ctrl+Z removes the imported hands in one step.  No 'REGISTER': "Adjust Last
    Operation" would re-run execute(), i.e. upload and reconstruct again.
    """

    bl_options = {'UNDO'}

    _timer = None
    _runner: JobRunner | None = None
    _video = ""

    @classmethod
    def poll(cls, context):
        return _active_runner is None or _active_runner.status().finished

    def _make_runner(self, context) -> JobRunner:
        raise NotImplementedError

    def _start(self, context) -> bool:
        global _active_runner
        try:
            self._runner = self._make_runner(context)
        except (ClientError, ValueError) as exc:
            self.report({'ERROR'}, str(exc))
            return False
        _active_runner = self._runner.start()
        context.window_manager.lagc_hand_running = True
        return True

    def execute(self, context):
        # Headless: no event loop, so wait here; the UI path is invoke() + modal().
        if not self._start(context):
            return {'CANCELLED'}
        self._runner.wait()
        return self._finish(context)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        if not self._start(context):
            return {'CANCELLED'}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if event.type == 'ESC' and event.value == 'PRESS':
            self._runner.cancel()
            return {'RUNNING_MODAL'}  # consumed: Esc means "cancel the job" here
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        if not poll_job(context, self._runner).finished:
            return {'PASS_THROUGH'}
        context.window_manager.event_timer_remove(self._timer)
        return self._finish(context)

    def _finish(self, context):
        global _active_runner
        _active_runner = None
        level, message, result = apply_job_result(context, self._runner, self._video)
        for warning in result.warnings if result else ():
            self.report({'WARNING'}, warning)
        self.report({level}, message)
        return {'FINISHED'} if level == 'INFO' else {'CANCELLED'}


class LAGCHAND_OT_reconstruct(_JobOperator, bpy.types.Operator):
    """Send the video to the local backend and import the reconstructed hands (Esc cancels)"""

    bl_idname = "lagc_hand.reconstruct"
    bl_label = "Reconstruct hands"

    def _make_runner(self, context) -> JobRunner:
        self._video = _video_path(context)
        if not os.path.isfile(self._video):
            raise ClientError(f"The video {self._video} does not exist")
        client = _client(context)
        options = job_options(context.scene.lagc_hand)
        return JobRunner(client, self._video, options, preferences.result_dir(context))


class LAGCHAND_OT_attach_job(_JobOperator, bpy.types.Operator):
    """Follow a job already on the backend (running, or done) and import its result"""

    bl_idname = "lagc_hand.attach_job"
    bl_label = "Re-attach / import job"

    job_id: StringProperty(name="Job", options={'SKIP_SAVE'})
    source: StringProperty(name="Source", options={'SKIP_SAVE'},
                           description="The job's video (names the result; its background when the file exists)")

    def _make_runner(self, context) -> JobRunner:
        if not self.job_id:
            raise ClientError("No job given to re-attach to")
        self._video = self.source or self.job_id
        return JobRunner(_client(context), self._video, None, preferences.result_dir(context), job_id=self.job_id)


class LAGCHAND_OT_resubmit_job(_JobOperator, bpy.types.Operator):
    """Run an interrupted, failed or cancelled job again (same video, same options) and import it"""

    bl_idname = "lagc_hand.resubmit_job"
    bl_label = "Resubmit job"

    job_id: StringProperty(name="Job", options={'SKIP_SAVE'})

    def _make_runner(self, context) -> JobRunner:
        if not self.job_id:
            raise ClientError("No job given to resubmit")
        client = _client(context)
        new = client.resubmit(self.job_id)
        self._video = _local_source(context, self.job_id, new.get("source") or new["id"])
        return JobRunner(client, self._video, None, preferences.result_dir(context), job_id=new["id"])


def _local_source(context, old_job_id: str, source: str) -> str:
    """The video on this machine when the resubmitted job is the panel's last one."""
    wm = context.window_manager
    if wm.lagc_hand_last_job == old_job_id and os.path.isfile(wm.lagc_hand_last_video):
        return wm.lagc_hand_last_video
    return source


class LAGCHAND_OT_refresh_jobs(bpy.types.Operator):
    """List the backend's recent jobs in the panel"""

    bl_idname = "lagc_hand.refresh_jobs"
    bl_label = "Refresh jobs"

    def execute(self, context):
        try:
            jobs = recent_jobs(_client(context))
        except ClientError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        items = context.window_manager.lagc_hand_jobs
        items.clear()
        for job in jobs:
            item = items.add()
            item.job_id, item.source, item.state = job["id"], job["source"], job["state"]
            item.created = job["created"]
        self.report({'INFO'}, f"LAGC-Hand: {len(jobs)} recent job(s)")
        return {'FINISHED'}


def poll_job(context, runner: JobRunner):
    """One main-thread tick of a running job: mirror its status into the panel
    (window-manager properties) and the status bar.  Returns the status."""
    status = runner.status()
    wm = context.window_manager
    wm.lagc_hand_running = not status.finished
    wm.lagc_hand_progress = 100.0 * status.progress
    wm.lagc_hand_status = status.describe()
    if status.job_id and status.job_id != wm.lagc_hand_last_job:
        wm.lagc_hand_last_job = status.job_id
        wm.lagc_hand_last_video = runner.video_path if runner.attach_id is None else ""
    wm.lagc_hand_last_job_state = status.job_state
    workspace = getattr(context, "workspace", None)
    if workspace is not None:
        workspace.status_text_set(None if status.finished else f"LAGC-Hand: {status.describe()}  (Esc to cancel)")
    screen = getattr(context, "screen", None)
    for area in screen.areas if screen else ():
        if area.type == 'VIEW_3D':
            area.tag_redraw()
    return status


def apply_job_result(context, runner: JobRunner, video: str):
    """Main thread, once the job is finished: import the result into the scene.

    Returns ``(report level, message, ImportResult or None)``; nothing is left in
    the scene unless the import fully succeeded.
    """
    status = poll_job(context, runner)
    if status.state == 'cancelled':
        return 'WARNING', "LAGC-Hand: reconstruction cancelled", None
    if status.state != 'done':
        return 'ERROR', status.message or f"LAGC-Hand: job ended {status.state}", None
    s = context.scene.lagc_hand
    name = datablock_prefix(os.path.splitext(os.path.basename(video))[0])
    options = scene_writer.ImportOptions(name=name, variant=s.variant, low_confidence=s.low_confidence,
                                         camera=s.create_camera, video_path=video if os.path.isfile(video) else "",
                                         max_influences=4 if s.limit_influences else 0)
    try:
        result = scene_writer.import_motion_file(status.result_path, options, context.scene)
    except HandMotionError as exc:
        return 'ERROR', str(exc), None
    if s.source_type == 'CLIP' and s.clip is not None and result.camera is not None and result.clip is not None:
        # Reuse the user's clip rather than a second copy of the same footage.
        result.camera.data.background_images[0].clip = s.clip
        bpy.data.movieclips.remove(result.clip)
        result.clip = s.clip
        context.scene.active_clip = s.clip
    hands = ", ".join(sorted(result.armatures)) or "no hands"
    message = f"LAGC-Hand: imported {hands} into collection '{result.collection.name}'"
    if result.hidden:
        hid = f"; hid {', '.join(result.hidden)} (it stood in the camera's view)"
        message += hid
        context.window_manager.lagc_hand_status += hid  # the panel's status line says it too
    return 'INFO', message, result


class LAGCHAND_OT_cancel_job(bpy.types.Operator):
    """Cancel the running reconstruction (on the backend too)"""

    bl_idname = "lagc_hand.cancel_job"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return _active_runner is not None

    def execute(self, context):
        _active_runner.cancel()
        context.window_manager.lagc_hand_status = "Cancelling..."
        return {'FINISHED'}


class LAGCHAND_OT_switch_variant(bpy.types.Operator):
    """Play the raw or the cleaned motion on every LAGC-Hand armature"""

    bl_idname = "lagc_hand.switch_variant"
    bl_label = "Switch raw / cleaned"
    bl_options = {'REGISTER', 'UNDO'}

    variant: EnumProperty(name="Motion", items=[('clean', "Cleaned", ""), ('raw', "Raw", "")], default='clean')

    def execute(self, context):
        n = scene_writer.switch_variant(self.variant, context.scene)
        if context.scene.lagc_hand.variant != self.variant:
            context.scene.lagc_hand.variant = self.variant  # its update switches again: harmless
        self.report({'INFO'}, f"LAGC-Hand: {n} hand(s) now play the {self.variant} motion")
        return {'FINISHED'}


class LAGCHAND_OT_check_connection(bpy.types.Operator):
    """Check that the backend answers and accepts the token"""

    bl_idname = "lagc_hand.check_connection"
    bl_label = "Check connection"

    def execute(self, context):
        try:
            client = _client(context)
            health = client.health()
            client.jobs()  # needs the token: catches a wrong one now, not mid-job
        except ClientError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        engines = ", ".join(health.get("engines", [])) or "none"
        self.report({'INFO'}, f"LAGC-Hand backend {health.get('version', '?')} at {client.base_url}; engines: {engines}")
        return {'FINISHED'}


class LAGCHAND_OT_check_backend_env(bpy.types.Operator):
    """Run the configured backend's 'lagc-hand --version'"""

    bl_idname = "lagc_hand.check_backend_env"
    bl_label = "Check backend environment"

    def execute(self, context):
        prefs = preferences.get(context)
        try:
            version = backend_env.check_version(bpy.path.abspath(prefs.backend_env) if prefs else "")
        except backend_env.BackendEnvError as exc:
            self.report({'ERROR'}, f"LAGC-Hand: {exc}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"LAGC-Hand backend: {version}")
        return {'FINISHED'}


#: Seconds after Start backend during which an exit is still reported in the panel.
_WATCH_S = 30.0


def watch_backends(context=None) -> float | None:
    """Report backends started by this session that have exited since (their exit
    status and last output) in the panel's status line.  A timer calls it while
    the UI runs; returns the seconds to the next call, or ``None`` when done."""
    context = context or bpy.context
    pending = False
    for entry in list(_backend_processes):
        proc, log_path, offset, started = entry["proc"], entry["log"], entry["offset"], entry["started"]
        message = backend_env.exit_message(proc, log_path, offset)
        if message is not None and not entry.get("reported"):
            entry["reported"] = True
            context.window_manager.lagc_hand_status = message
        elif message is None and time.monotonic() - started < _WATCH_S:
            pending = True
    return 1.0 if pending else None


class LAGCHAND_OT_start_backend(bpy.types.Operator):
    """Start a local backend with the command from the preferences"""

    bl_idname = "lagc_hand.start_backend"
    bl_label = "Start backend"

    def execute(self, context):
        prefs = preferences.get(context)
        command = prefs.backend_command if prefs else "lagc-hand serve"
        try:
            argv = backend_env.start_argv(shlex.split(command),
                                          bpy.path.abspath(prefs.backend_env) if prefs else "")
        except ValueError as exc:
            self.report({'ERROR'}, f"Cannot parse the start command {command!r}: {exc}")
            return {'CANCELLED'}
        except backend_env.BackendEnvError as exc:
            self.report({'ERROR'}, f"Cannot start the backend: {exc}")
            return {'CANCELLED'}
        if not argv:
            self.report({'ERROR'}, "The backend start command is empty (add-on preferences)")
            return {'CANCELLED'}
        log_path = os.path.join(tempfile.gettempdir(), "lagc-hand-backend.log")
        try:
            log = open(log_path, "ab")
        except OSError as exc:
            self.report({'ERROR'}, f"Cannot write the backend log {log_path}: {exc.strerror or exc}")
            return {'CANCELLED'}
        with log:  # the child keeps its own handle
            offset = log.tell()
            try:
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            except OSError as exc:
                self.report({'ERROR'}, f"Cannot start the backend with {command!r}: {exc.strerror or exc}")
                return {'CANCELLED'}
        _backend_processes.append({"proc": proc, "log": log_path, "offset": offset, "started": time.monotonic()})
        try:
            proc.wait(backend_env.EARLY_EXIT_S)  # most start-up failures happen here
        except subprocess.TimeoutExpired:
            pass
        message = backend_env.exit_message(proc, log_path, offset)
        if message is not None:
            _backend_processes[-1]["reported"] = True
            context.window_manager.lagc_hand_status = message
            self.report({'ERROR'}, f"LAGC-Hand: {message}")
            return {'CANCELLED'}
        text = f"LAGC-Hand backend starting (pid {proc.pid}); log: {log_path}"
        context.window_manager.lagc_hand_status = text
        if not bpy.app.background and not bpy.app.timers.is_registered(watch_backends):
            bpy.app.timers.register(watch_backends, first_interval=1.0)
        self.report({'INFO'}, text)
        return {'FINISHED'}


def menu_import(self, context):
    self.layout.operator(LAGCHAND_OT_import_motion.bl_idname, text="LAGC-Hand motion (.npz)")


CLASSES = (LAGCHAND_OT_import_motion, LAGCHAND_OT_reconstruct, LAGCHAND_OT_attach_job, LAGCHAND_OT_resubmit_job,
           LAGCHAND_OT_refresh_jobs, LAGCHAND_OT_cancel_job,
           LAGCHAND_OT_switch_variant, LAGCHAND_OT_check_connection, LAGCHAND_OT_check_backend_env,
           LAGCHAND_OT_start_backend)


@bpy.app.handlers.persistent
def _cancel_on_load(*_args):
    """Loading a file drops modal operators without telling them: cancel the job
    (on the server too) instead of leaving it orphaned with the button disabled."""
    global _active_runner
    if _active_runner is not None:
        _active_runner.cancel()
        _active_runner = None
    wm = bpy.context.window_manager
    if wm is not None and hasattr(wm, "lagc_hand_running"):
        wm.lagc_hand_running = False


_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register():
    _register_classes()
    bpy.types.TOPBAR_MT_file_import.append(menu_import)
    bpy.app.handlers.load_pre.append(_cancel_on_load)


def unregister():
    global _active_runner
    if bpy.app.timers.is_registered(watch_backends):
        bpy.app.timers.unregister(watch_backends)
    if _active_runner is not None:
        _active_runner.cancel()
        _active_runner = None
    for handler in [h for h in bpy.app.handlers.load_pre if getattr(h, "__name__", "") == "_cancel_on_load"]:
        bpy.app.handlers.load_pre.remove(handler)
    bpy.types.TOPBAR_MT_file_import.remove(menu_import)
    _unregister_classes()
