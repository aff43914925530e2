from protos.weft.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PayloadKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYLOAD_KIND_UNSPECIFIED: _ClassVar[PayloadKind]
    PAYLOAD_KIND_OBJECT: _ClassVar[PayloadKind]
    PAYLOAD_KIND_TABLE: _ClassVar[PayloadKind]
PAYLOAD_KIND_UNSPECIFIED: PayloadKind
PAYLOAD_KIND_OBJECT: PayloadKind
PAYLOAD_KIND_TABLE: PayloadKind

class FrameHeader(_message.Message):
    __slots__ = ("message_id", "session_id", "name", "tag", "src", "dst", "total_size", "checksum", "kind", "created_at_ms")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    session_id: str
    name: str
    tag: str
    src: _common_pb2.Party
    dst: _common_pb2.Party
    total_size: int
    checksum: bytes
    kind: PayloadKind
    created_at_ms: int
    def __init__(self, message_id: _Optional[str] = ..., session_id: _Optional[str] = ..., name: _Optional[str] = ..., tag: _Optional[str] = ..., src: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., dst: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., total_size: _Optional[int] = ..., checksum: _Optional[bytes] = ..., kind: _Optional[_Union[PayloadKind, str]] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class FrameChunk(_message.Message):
    __slots__ = ("seq", "data")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    seq: int
    data: bytes
    def __init__(self, seq: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class FrameEnd(_message.Message):
    __slots__ = ("chunk_count", "total_size", "checksum")
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    chunk_count: int
    total_size: int
    checksum: bytes
    def __init__(self, chunk_count: _Optional[int] = ..., total_size: _Optional[int] = ..., checksum: _Optional[bytes] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("header", "chunk", "end")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    header: FrameHeader
    chunk: FrameChunk
    end: FrameEnd
    def __init__(self, header: _Optional[_Union[FrameHeader, _Mapping]] = ..., chunk: _Optional[_Union[FrameChunk, _Mapping]] = ..., end: _Optional[_Union[FrameEnd, _Mapping]] = ...) -> None: ...

class IssueTicketRequest(_message.Message):
    __slots__ = ("session_id", "target_member_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    target_member_id: str
    def __init__(self, session_id: _Optional[str] = ..., target_member_id: _Optional[str] = ...) -> None: ...

class IssueTicketResponse(_message.Message):
    __slots__ = ("ticket", "expires_at_ms", "peer_endpoint", "ca_pem", "server_name", "task_cert_pem", "task_key_pem")
    TICKET_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PEER_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    SERVER_NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_CERT_PEM_FIELD_NUMBER: _ClassVar[int]
    TASK_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    ticket: bytes
    expires_at_ms: int
    peer_endpoint: str
    ca_pem: bytes
    server_name: str
    task_cert_pem: bytes
    task_key_pem: bytes
    def __init__(self, ticket: _Optional[bytes] = ..., expires_at_ms: _Optional[int] = ..., peer_endpoint: _Optional[str] = ..., ca_pem: _Optional[bytes] = ..., server_name: _Optional[str] = ..., task_cert_pem: _Optional[bytes] = ..., task_key_pem: _Optional[bytes] = ...) -> None: ...

class TicketClaims(_message.Message):
    __slots__ = ("source_member_id", "target_member_id", "session_id", "job_id", "issued_at_ms", "expires_at_ms", "nonce")
    SOURCE_MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    source_member_id: str
    target_member_id: str
    session_id: str
    job_id: str
    issued_at_ms: int
    expires_at_ms: int
    nonce: bytes
    def __init__(self, source_member_id: _Optional[str] = ..., target_member_id: _Optional[str] = ..., session_id: _Optional[str] = ..., job_id: _Optional[str] = ..., issued_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., nonce: _Optional[bytes] = ...) -> None: ...

class DeliveryTicket(_message.Message):
    __slots__ = ("claims", "signature", "member_certificate")
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    claims: bytes
    signature: bytes
    member_certificate: bytes
    def __init__(self, claims: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., member_certificate: _Optional[bytes] = ...) -> None: ...

class GetDataLaneRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DataLane(_message.Message):
    __slots__ = ("port", "unix_name", "direct_min_bytes")
    PORT_FIELD_NUMBER: _ClassVar[int]
    UNIX_NAME_FIELD_NUMBER: _ClassVar[int]
    DIRECT_MIN_BYTES_FIELD_NUMBER: _ClassVar[int]
    port: int
    unix_name: str
    direct_min_bytes: int
    def __init__(self, port: _Optional[int] = ..., unix_name: _Optional[str] = ..., direct_min_bytes: _Optional[int] = ...) -> None: ...

class SendAck(_message.Message):
    __slots__ = ("message_id", "stored_size", "duplicate")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STORED_SIZE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    stored_size: int
    duplicate: bool
    def __init__(self, message_id: _Optional[str] = ..., stored_size: _Optional[int] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class ReceiveRequest(_message.Message):
    __slots__ = ("session_id", "name", "tag", "src", "dst", "timeout_ms")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    name: str
    tag: str
    src: _common_pb2.Party
    dst: _common_pb2.Party
    timeout_ms: int
    def __init__(self, session_id: _Optional[str] = ..., name: _Optional[str] = ..., tag: _Optional[str] = ..., src: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., dst: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class RegisterSessionRequest(_message.Message):
    __slots__ = ("session_id", "job_id", "parties", "ttl_s")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    job_id: str
    parties: _containers.RepeatedCompositeFieldContainer[_common_pb2.Party]
    ttl_s: int
    def __init__(self, session_id: _Optional[str] = ..., job_id: _Optional[str] = ..., parties: _Optional[_Iterable[_Union[_common_pb2.Party, _Mapping]]] = ..., ttl_s: _Optional[int] = ...) -> None: ...

class CleanSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CleanSessionResponse(_message.Message):
    __slots__ = ("messages_removed", "bytes_freed")
    MESSAGES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    messages_removed: int
    bytes_freed: int
    def __init__(self, messages_removed: _Optional[int] = ..., bytes_freed: _Optional[int] = ...) -> None: ...

class ControlRequest(_message.Message):
    __slots__ = ("target_member_id", "method", "payload", "timeout_ms")
    TARGET_MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    target_member_id: str
    method: str
    payload: bytes
    timeout_ms: int
    def __init__(self, target_member_id: _Optional[str] = ..., method: _Optional[str] = ..., payload: _Optional[bytes] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class ControlReply(_message.Message):
    __slots__ = ("payload", "status_code", "message")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    status_code: int
    message: str
    def __init__(self, payload: _Optional[bytes] = ..., status_code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PeerStats(_message.Message):
    __slots__ = ("member_id", "bytes_out", "bytes_in", "messages_out", "messages_in", "retries", "refused")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    BYTES_OUT_FIELD_NUMBER: _ClassVar[int]
    BYTES_IN_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_OUT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_IN_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    bytes_out: int
    bytes_in: int
    messages_out: int
    messages_in: int
    retries: int
    refused: int
    def __init__(self, member_id: _Optional[str] = ..., bytes_out: _Optional[int] = ..., bytes_in: _Optional[int] = ..., messages_out: _Optional[int] = ..., messages_in: _Optional[int] = ..., retries: _Optional[int] = ..., refused: _Optional[int] = ...) -> None: ...

class TransferStats(_message.Message):
    __slots__ = ("peers", "mailbox_messages", "mailbox_memory_bytes", "mailbox_disk_bytes", "sessions", "duplicates_dropped", "receivers_waiting")
    PEERS_FIELD_NUMBER: _ClassVar[int]
    MAILBOX_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MAILBOX_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAILBOX_DISK_BYTES_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    RECEIVERS_WAITING_FIELD_NUMBER: _ClassVar[int]
    peers: _containers.RepeatedCompositeFieldContainer[PeerStats]
    mailbox_messages: int
    mailbox_memory_bytes: int
    mailbox_disk_bytes: int
    sessions: int
    duplicates_dropped: int
    receivers_waiting: int
    def __init__(self, peers: _Optional[_Iterable[_Union[PeerStats, _Mapping]]] = ..., mailbox_messages: _Optional[int] = ..., mailbox_memory_bytes: _Optional[int] = ..., mailbox_disk_bytes: _Optional[int] = ..., sessions: _Optional[int] = ..., duplicates_dropped: _Optional[int] = ..., receivers_waiting: _Optional[int] = ...) -> None: ...

class DeliverAck(_message.Message):
    __slots__ = ("message_id", "stored_size", "duplicate")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STORED_SIZE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    stored_size: int
    duplicate: bool
    def __init__(self, message_id: _Optional[str] = ..., stored_size: _Optional[int] = ..., duplicate: _Optional[bool] = ...) -> None: ...
