"""Multi-view evaluation (docs/recipe.md): clips x crops per video, logits averaged per video.

The data set gives every video as ``(V, T, 3, H, W)`` with V = clips x crops views. Each view goes
through the model (whose consensus already averages the frame logits), then the **raw logits** of the V
views are averaged, as the release does by default; its softmax option (``data.test_softmax``) averages
the views' softmax scores instead (kept as their log, so argmax and cross-entropy still apply). Every view of every
video must be seen exactly once, otherwise evaluation stops with an error naming the video.

Metrics: top-1, top-5, mean class accuracy (the mean over the classes present of each class's recall)
and the cross-entropy of the averaged logits. EPIC-Kitchens (two heads): verb and noun top-1/top-5 and
the action (verb, noun) pair: top-1 when both heads are right, top-5 over the product of the two heads'
softmax scores.

With ``runtime.compile`` set, the model predicts under ``torch.compile`` (:func:`compile_model`).

In a process group (data parallel), each rank predicts a disjoint shard of the videos and the shards are
gathered (:func:`predict_dataset`), so the metrics are those of one process over the whole set.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gsf.engine import distributed
from gsf.engine.checkpoint import check_compatible, is_authors_checkpoint, load_checkpoint
from gsf.engine.config import (
    TrainConfig,
    check_config,
    model_kwargs,
    parse_protocols,
    parse_views,
    resolve_device,
    resolve_precision,
)
from gsf.engine.loaders import autocast_for, build_split, eval_loader, num_classes_of
from gsf.errors import GSFConfigError, GSFDataError

log = logging.getLogger(__name__)


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Bool ``(N,)``: the label is among the ``k`` highest logits (k clipped to the class count)."""
    k = min(k, logits.shape[-1])
    return (logits.topk(k, dim=-1).indices == labels[:, None]).any(dim=-1)


def mean_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over the classes present in ``labels`` of the fraction of their samples predicted right."""
    recalls = [(predictions[labels == c] == c).float().mean().item() for c in labels.unique()]
    return float(sum(recalls) / len(recalls)) if recalls else math.nan


def classification_metrics(logits, labels: torch.Tensor) -> dict[str, float]:
    """``loss``, ``top1``, ``top5``, ``mean_class_acc`` of video-level logits (fractions, not percent).

    ``logits`` is ``(N, K)``, or a dict ``{"verb": (N, Kv), "noun": (N, Kn)}`` with ``labels (N, 2)``:
    then ``top1``/``top5``/``mean_class_acc`` are the action's and ``loss`` the sum of the heads' losses.
    """
    if isinstance(logits, Mapping):
        verb, noun = logits["verb"].float(), logits["noun"].float()
        verb_label, noun_label = labels[:, 0], labels[:, 1]
        verb_ok, noun_ok = topk_correct(verb, verb_label, 1), topk_correct(noun, noun_label, 1)
        action_ok = verb_ok & noun_ok
        joint = (verb.softmax(-1)[:, :, None] * noun.softmax(-1)[:, None, :]).flatten(1)
        action_label = verb_label * noun.shape[-1] + noun_label
        action_pred = verb.argmax(-1) * noun.shape[-1] + noun.argmax(-1)
        return {
            "loss": float(F.cross_entropy(verb, verb_label) + F.cross_entropy(noun, noun_label)),
            "top1": action_ok.float().mean().item(),
            "top5": topk_correct(joint, action_label, 5).float().mean().item(),
            "mean_class_acc": mean_class_accuracy(action_pred, action_label),
            "verb_top1": verb_ok.float().mean().item(),
            "verb_top5": topk_correct(verb, verb_label, 5).float().mean().item(),
            "noun_top1": noun_ok.float().mean().item(),
            "noun_top5": topk_correct(noun, noun_label, 5).float().mean().item(),
        }
    logits = logits.float()
    return {
        "loss": float(F.cross_entropy(logits, labels)),
        "top1": topk_correct(logits, labels, 1).float().mean().item(),
        "top5": topk_correct(logits, labels, 5).float().mean().item(),
        "mean_class_acc": mean_class_accuracy(logits.argmax(-1), labels),
    }


@torch.no_grad()
def predict_views(model: nn.Module, loader, *, num_views: int, device: str | torch.device = "cpu",
                  autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
                  indices: Sequence[int] | None = None, allow_empty: bool = False, softmax: bool = False) -> dict:
    """Run every view of every video through ``model`` and average the views' logits per video
    (``softmax``: the log of the average of the views' softmax scores, the release's ``--softmax``).

    Returns ``{"index": (N,), "video_id": [...], "label": (N,) or (N, 2), "logits": (N, K) or dict,
    "views_seen": int, "skipped": [...]}`` sorted by data-set index. Raises :class:`GSFDataError` if a
    video does not have ``num_views`` views or a video is seen twice or never (skipped ones excepted).
    ``indices``: the data-set indices the loader yields (default: every index of ``loader.dataset``).
    ``allow_empty``: a loader that yields no readable video (a shard) gives ``logits`` None, not an error.
    """
    was_training = model.training
    model.eval()
    seen: dict[int, int] = {}
    batch_indices, video_ids, labels, outputs, skipped = [], [], [], [], []
    views_seen = 0
    try:
        for batch in loader:
            skipped += list(batch.get("skipped", []))
            if "video" not in batch:
                continue
            video = batch["video"]
            if video.dim() != 6 or video.shape[1] != num_views:
                raise GSFDataError(f"evaluation expects (B, {num_views}, T, 3, H, W) per batch (V = clips x crops), "
                                   f"got {tuple(video.shape)} for videos {batch['video_id'][:3]}")
            b, v = video.shape[:2]
            with autocast() if autocast is not None else contextlib.nullcontext():
                out = model(video.to(device, non_blocking=True).flatten(0, 1))
            if isinstance(out, Mapping):
                out = {name: _average_views(o, b, v, softmax) for name, o in out.items()}
            else:
                out = _average_views(out, b, v, softmax)
            for index, video_id in zip(batch["index"].tolist(), batch["video_id"]):
                if index in seen:
                    raise GSFDataError(f"video {video_id} (index {index}) was evaluated twice")
                seen[index] = v
            views_seen += b * v
            batch_indices.append(batch["index"])
            video_ids += list(batch["video_id"])
            labels.append(batch["label"])
            outputs.append(out)
    finally:
        model.train(was_training)
    dataset = getattr(loader, "dataset", None)
    wanted = indices if indices is not None or dataset is None else range(len(dataset))
    if wanted is not None:
        expected = len(wanted) - len(skipped)
        if len(seen) != expected:
            missing = sorted(set(wanted) - set(seen))[:5]
            raise GSFDataError(f"evaluation saw {len(seen)} of {expected} videos (first missing indices {missing})")
    if views_seen != len(seen) * num_views:
        raise GSFDataError(f"evaluation saw {views_seen} views for {len(seen)} videos, expected {num_views} each")
    if not outputs:
        if allow_empty:
            return _empty_prediction(skipped)
        raise GSFDataError("evaluation saw no video at all (empty split, or every sample skipped)")
    index = torch.cat(batch_indices)
    order = index.argsort()
    if isinstance(outputs[0], Mapping):
        logits = {name: torch.cat([o[name] for o in outputs])[order] for name in outputs[0]}
    else:
        logits = torch.cat(outputs)[order]
    return {"index": index[order], "video_id": [video_ids[i] for i in order.tolist()],
            "label": torch.cat(labels)[order], "logits": logits, "views_seen": views_seen, "skipped": skipped}


def _average_views(output: torch.Tensor, batch: int, views: int, softmax: bool) -> torch.Tensor:
    """(B*V, K) view outputs -> (B, K): the mean of the logits, or the log of the mean softmax score."""
    output = output.float().view(batch, views, -1)
    if softmax:
        return output.softmax(dim=-1).mean(dim=1).log().cpu()
    return output.mean(dim=1).cpu()


def _empty_prediction(skipped: list) -> dict:
    return {"index": torch.zeros(0, dtype=torch.int64), "video_id": [], "label": None, "logits": None,
            "views_seen": 0, "skipped": list(skipped)}


def merge_predictions(parts: Sequence[dict], *, num_videos: int) -> dict:
    """One prediction (as :func:`predict_views` returns) from the predictions of disjoint shards of a
    data set of ``num_videos`` videos (``logits`` None: a shard without readable video); a video
    predicted twice or never (skipped ones excepted) is an error."""
    skipped = [video_id for p in parts for video_id in p["skipped"]]
    parts = [p for p in parts if p["logits"] is not None]
    if not parts:
        raise GSFDataError("evaluation saw no video at all (empty split, or every sample skipped)")
    index = torch.cat([p["index"] for p in parts])
    order = index.argsort()
    index = index[order]
    repeated = index[1:][index[1:] == index[:-1]]
    if repeated.numel():
        raise GSFDataError(f"evaluation shards overlap: video indices {repeated[:5].tolist()} were predicted twice")
    if index.numel() != num_videos - len(skipped):
        raise GSFDataError(f"evaluation shards hold {index.numel()} of {num_videos - len(skipped)} videos")
    if isinstance(parts[0]["logits"], Mapping):
        logits = {name: torch.cat([p["logits"][name] for p in parts])[order] for name in parts[0]["logits"]}
    else:
        logits = torch.cat([p["logits"] for p in parts])[order]
    video_ids = [video_id for p in parts for video_id in p["video_id"]]
    return {"index": index, "video_id": [video_ids[i] for i in order.tolist()],
            "label": torch.cat([p["label"] for p in parts])[order], "logits": logits,
            "views_seen": sum(p["views_seen"] for p in parts), "skipped": skipped}


def compile_model(model: nn.Module, setting: bool | str) -> nn.Module:
    """``model`` under ``torch.compile`` as ``runtime.compile`` asks (docs/compile.md): ``False``, the model
    itself; ``True``, torch's default mode; ``"max-autotune"``, that mode.

    Every GSF module of ``model`` is set to its composed path first (:func:`gsf.ops.set_gsf_path`, an attribute,
    not in the state dict): standard operators that Inductor fuses, the path ``path="auto"`` takes under
    compile as well (:func:`gsf.ops.path_for_device`); a module forced to the fused path would otherwise be
    compiled on its hand-written autograd Functions, whose in-place loops over cache-sized pieces are laid
    out for eager execution and which dynamo unrolls, one set of operators per piece. The whole
    forward is one graph (``fullgraph=True``: a graph break
    is an error, not a silent fall back to eager) for fixed shapes (``dynamic=False``: a new batch size
    compiles a new graph). The compiled module wraps ``model`` (``_orig_mod``), so ``model`` itself stays eager
    for what calls it directly (hooks, copies) and its state dict keys keep their names."""
    if setting is False:
        return model
    from gsf.ops import set_gsf_path

    set_gsf_path(model, "composed")
    return torch.compile(model, mode=None if setting is True else setting, fullgraph=True, dynamic=False)


def predict_dataset(model: nn.Module, dataset, config: TrainConfig, *, num_views: int, device: torch.device,
                    precision: str, softmax: bool = False) -> dict:
    """:func:`predict_views` over every video of ``dataset``, with the loader of ``config``. In a process
    group each rank predicts videos r, r + N, ... (no padding, nothing twice) and every rank returns the
    gathered prediction of the whole set. ``model`` is the bare model (not its DDP wrapper)."""
    device = torch.device(device)
    where = distributed.group()
    indices = distributed.shard(len(dataset), where) if where.active else None

    def predict():
        loader = eval_loader(dataset, config, num_views, indices=indices)
        return predict_views(model, loader, num_views=num_views, device=device, indices=indices,
                             autocast=lambda: autocast_for(device.type, precision), allow_empty=where.active,
                             softmax=softmax)

    if not where.active:
        return predict()
    part = predict() if len(indices) else _empty_prediction([])
    return merge_predictions(distributed.all_gather_objects(part), num_videos=len(dataset))


def write_scores(path: str | Path, prediction: dict) -> Path:
    """Per-video scores for ensembling: ``video_id``, label(s), then the averaged logit of every class
    (``score_<k>``; EPIC: ``verb_label``, ``noun_label``, ``verb_<k>``..., ``noun_<k>``...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    logits, labels = prediction["logits"], prediction["label"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if isinstance(logits, Mapping):
            names = list(logits)
            writer.writerow(["video_id", *(f"{n}_label" for n in names),
                             *(f"{n}_{k}" for n in names for k in range(logits[n].shape[1]))])
            for i, video_id in enumerate(prediction["video_id"]):
                writer.writerow([video_id, *labels[i].tolist(),
                                 *(f"{x:.6g}" for n in names for x in logits[n][i].tolist())])
        else:
            writer.writerow(["video_id", "label", *(f"score_{k}" for k in range(logits.shape[1]))])
            for i, video_id in enumerate(prediction["video_id"]):
                writer.writerow([video_id, int(labels[i]), *(f"{x:.6g}" for x in logits[i].tolist())])
    return path


def evaluate_checkpoint(config: TrainConfig, checkpoint: str | Path, *, views: str | None = None, split: str | None = None,
                        out_dir: str | Path | None = None, decoded_cache: dict | None = None) -> dict[str, float]:
    """Multi-view test of a checkpoint on ``split`` (default ``data.val_split``) with ``views``
    (CLIPSxCROPS, default the first protocol of ``data.test_views``; :func:`evaluate_protocols` tests at
    each); the views' crops and clips follow ``data.test_three_crops``, ``data.test_sampling`` and
    ``data.test_softmax`` (docs/recipe.md); writes ``<out_dir>/scores/test_<clips>x<crops>.csv``. The model
    runs compiled when ``runtime.compile`` is set (:func:`compile_model`).

    ``checkpoint`` is one of this suite's (its model section must match ``config.model``) or an authors'
    release checkpoint (``model_state_dict`` with ``module.base_model.`` keys, loaded through
    :func:`gsf.from_authors_checkpoint`). Returns ``test_top1``, ``test_top5``, ``test_mean_class_acc``,
    ``test_loss`` (EPIC: also verb/noun), ``clips``, ``crops``, ``videos``, ``views_seen``.
    """
    from gsf.models import build_model, from_authors_checkpoint

    if config.runtime.world_size != 1 and not distributed.group().active:
        # the configuration of a data-parallel run: outside a process group, evaluation is one process
        config = config.copy({"runtime.world_size": 1}, source="evaluate_checkpoint")
    check_config(config)
    if not views:
        protocols = parse_protocols(config.data.test_views)
        if not protocols:
            raise GSFConfigError("no test views: give views (CLIPSxCROPS) or set data.test_views")
        views = protocols[0]
    clips, crops = parse_views(views, key="views")
    dataset = build_split(config, split or config.data.val_split, train=False, views=views, decoded_cache=decoded_cache)
    num_classes = num_classes_of(dataset)
    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    device, precision = distributed.local_device(resolve_device(config)), resolve_precision(config)
    if is_authors_checkpoint(state):
        m = config.model
        if m.temporal != "gsf" or isinstance(num_classes, dict):
            raise GSFConfigError(f"{checkpoint} is an authors' GSF checkpoint; set model.temporal=gsf and a "
                                 f"single-head data set (got {m.temporal}, {num_classes})")
        model = from_authors_checkpoint(checkpoint, backbone=m.backbone, num_classes=num_classes,
                                        channel_fraction=m.channel_fraction, dropout=m.dropout)
    else:
        model = build_model(**model_kwargs(config, num_classes=num_classes, pretrained=False))
        check_compatible(state, config.to_dict()["model"], model, path=checkpoint)
        model.load_state_dict(state["model"])
    model.to(device)
    prediction = predict_dataset(compile_model(model, config.runtime.compile), dataset, config,
                                 num_views=clips * crops, device=device, precision=precision,
                                 softmax=config.data.test_softmax)
    if out_dir is None:
        out_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    scores = Path(out_dir) / "scores" / f"test_{clips}x{crops}.csv"
    if distributed.group().is_main:  # in a process group, every rank has the gathered prediction
        write_scores(scores, prediction)
    result = {f"test_{k}": v for k, v in classification_metrics(prediction["logits"], prediction["label"]).items()}
    result.update(clips=float(clips), crops=float(crops), videos=float(len(prediction["video_id"])),
                  views_seen=float(prediction["views_seen"]))
    log.info("%s %dx%d on %d videos: %s (scores in %s)", checkpoint, clips, crops, len(prediction["video_id"]),
             ", ".join(f"{k}={v:.4f}" for k, v in result.items() if k.startswith("test_")), scores)
    return result


def evaluate_protocols(config: TrainConfig, checkpoint: str | Path, *, protocols: Sequence[str] | None = None,
                       split: str | None = None, out_dir: str | Path | None = None,
                       decoded_cache: dict | None = None) -> dict[str, float]:
    """:func:`evaluate_checkpoint` at every test protocol (default: those of ``data.test_views``, the
    paper's 1x1 and 2x3, docs/recipe.md): ``test_<P>_top1``, ``test_<P>_top5`` and
    ``test_<P>_mean_class_acc`` for each protocol P (names of :func:`gsf.mlflow_schema.protocol_metric`),
    and ``scores/test_<P>.csv`` for each. ``decoded_cache``: see :func:`gsf.engine.loaders.build_split`."""
    from gsf.mlflow_schema import TEST_MEASURES, protocol_metric

    if protocols is None:
        protocols = parse_protocols(config.data.test_views)
    result: dict[str, float] = {}
    for protocol in protocols:
        clips, crops = parse_views(protocol, key="protocol")
        metrics = evaluate_checkpoint(config, checkpoint, views=f"{clips}x{crops}", split=split, out_dir=out_dir,
                                      decoded_cache=decoded_cache)
        result.update({protocol_metric(f"{clips}x{crops}", m): metrics[f"test_{m}"] for m in TEST_MEASURES})
    return result
