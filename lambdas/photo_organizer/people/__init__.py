"""Faces grouped into people: pure, deterministic code shared by the Glue job and the local backend."""

from photo_organizer.people.clustering import (
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_MIN_CLUSTER_SIZE,
    attach_new_faces,
    cluster_people,
)
from photo_organizer.people.constraints import merge_people, move_face, not_this_person, split_person
from photo_organizer.people.models import (
    DEFAULT_THRESHOLD,
    CannotLink,
    Change,
    ClusteringResult,
    Constraint,
    FaceRef,
    MustLink,
    OwnerMismatchError,
    Person,
    PinnedFace,
    SimilarityEdge,
    Split,
    distance_from_similarity,
    new_person_id,
    similarities_from_distances,
    similarity_from_distance,
)
from photo_organizer.people.nearest import DEFAULT_NEIGHBOURS, edges_per_owner, nearest_edges

__all__ = [
    "DEFAULT_MIN_AGREEMENT",
    "DEFAULT_MIN_CLUSTER_SIZE",
    "DEFAULT_NEIGHBOURS",
    "DEFAULT_THRESHOLD",
    "CannotLink",
    "Change",
    "ClusteringResult",
    "Constraint",
    "FaceRef",
    "MustLink",
    "OwnerMismatchError",
    "Person",
    "PinnedFace",
    "SimilarityEdge",
    "Split",
    "attach_new_faces",
    "cluster_people",
    "distance_from_similarity",
    "edges_per_owner",
    "merge_people",
    "move_face",
    "nearest_edges",
    "new_person_id",
    "not_this_person",
    "similarities_from_distances",
    "similarity_from_distance",
    "split_person",
]
