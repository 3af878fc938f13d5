"""Uploaded models: trained float weights to score, named by jobs as ``model_id``.

The upload is a multipart form: the weights file, and the network and dataset it was
trained for. This route has its own body limit (HWSCORE_MAX_MODEL_BYTES, see
app.main), far above the one every other request keeps.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile

from app.api.deps import OwnerDep, SessionDep, StateDep
from app.db.models import MODEL_NAME_MAX_LENGTH
from app.model_schemas import ModelList, ModelOut
from app.schemas import API_PREFIX, Problem
from app.services import models as model_service
from hwmodels.datasets.catalog import DatasetName

MODELS_PATH = f"{API_PREFIX}/models"
router = APIRouter(prefix=MODELS_PATH, tags=["models"])

ModelIdPath = Annotated[str, Path(max_length=36, description="An id from POST /api/v1/models.")]
_DESCRIBED = {
    401: "No valid API key (only when authentication is on).",
    404: "No such model for this API key.",
    413: "The weights file is over HWSCORE_MAX_MODEL_BYTES.",
    415: "The weights file is not safetensors (a pickled .pt is refused: it can run code).",
    422: "The network, dataset or weights do not fit; `errors` names each tensor.",
}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {
            "description": _DESCRIBED[code],
            "model": Problem,
            "content": {"application/problem+json": {}},
        }
        for code in codes
    }


@router.post("", status_code=201, response_model=ModelOut, responses=_problems(401, 413, 415, 422))
async def upload_model(
    response: Response,
    state: StateDep,
    session: SessionDep,
    owner: OwnerDep,
    weights: Annotated[
        UploadFile,
        File(description="safetensors file; tensors layers.<i>.weight/bias or nn.Sequential's"),
    ],
    architecture: Annotated[
        str,
        Form(
            description='The network, as a job\'s "network": {"hidden": [...]}, {"layers": '
            '[...]} or {"architecture": "lenet5"}.'
        ),
    ],
    dataset: Annotated[DatasetName, Form()] = "mnist",
    name: Annotated[str | None, Form(max_length=MODEL_NAME_MAX_LENGTH)] = None,
) -> ModelOut:
    """Upload trained float weights; answers the model's id for jobs' ``model_id``."""
    content = await weights.read(state.settings.max_model_bytes + 1)
    model = model_service.create_model(
        session,
        owner=owner,
        content=content,
        architecture=architecture,
        dataset=dataset,
        name=name,
        max_bytes=state.settings.max_model_bytes,
    )
    response.headers["Location"] = f"{MODELS_PATH}/{model.id}"
    return ModelOut.from_model(model)


@router.get("", response_model=ModelList, responses=_problems(401, 422))
def list_models(
    session: SessionDep, owner: OwnerDep, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> ModelList:
    """Your uploaded models, newest first."""
    models = model_service.list_models(session, owner, limit)
    return ModelList(models=[ModelOut.from_model(model) for model in models])


@router.get("/{model_id}", response_model=ModelOut, responses=_problems(401, 404))
def get_model(model_id: ModelIdPath, session: SessionDep, owner: OwnerDep) -> ModelOut:
    return ModelOut.from_model(model_service.get_owned_model(session, owner, model_id))


@router.delete("/{model_id}", status_code=204, responses=_problems(401, 404))
def delete_model(model_id: ModelIdPath, session: SessionDep, owner: OwnerDep) -> Response:
    """Delete the model; jobs that already finished keep their results."""
    model_service.delete_model(session, owner, model_id)
    return Response(status_code=204)
