"""Typed signing errors, each with a stable code and a Vietnamese message for the user."""

from __future__ import annotations


class SigningError(Exception):
    """Base of every error the signing core raises on purpose."""

    code = "signing_error"
    message = "Không ký được văn bản."

    def __init__(self, message: str | None = None, *, detail: str | None = None) -> None:
        self.message = message or self.message
        self.detail = detail
        super().__init__(self.message)


class InvalidPdfError(SigningError):
    """The input is not a readable PDF."""

    code = "invalid_pdf"
    message = "Tệp PDF bị hỏng hoặc không đọc được."


class EncryptedPdfError(InvalidPdfError):
    """The PDF is encrypted; we never sign encrypted documents."""

    code = "encrypted_pdf"
    message = "Tệp PDF đã được mã hóa (có mật khẩu), không thể ký."


class PlacementError(SigningError):
    """The signature box cannot be placed."""

    code = "placement"
    message = "Không xác định được vị trí đặt chữ ký."


class FieldExistsError(SigningError):
    """The signature field is already signed."""

    code = "field_signed"
    message = "Ô chữ ký này đã được ký."


class IdentityError(SigningError):
    """The key material cannot be used."""

    code = "identity"
    message = "Không dùng được khóa ký."


class WrongPassphraseError(IdentityError):
    """The PKCS#12 passphrase is wrong or the file is damaged."""

    code = "wrong_passphrase"
    message = "Mật khẩu tệp chứng thư số không đúng hoặc tệp bị hỏng."


class KeyMismatchError(IdentityError):
    """The private key does not belong to the certificate."""

    code = "key_mismatch"
    message = "Khóa bí mật không khớp với chứng thư số."


class CertificateExpiredError(IdentityError):
    """The signing certificate has expired."""

    code = "cert_expired"
    message = "Chứng thư số đã hết hạn."


class CertificateNotYetValidError(IdentityError):
    """The signing certificate is not valid yet."""

    code = "cert_not_yet_valid"
    message = "Chứng thư số chưa đến thời điểm có hiệu lực."


class TokenError(IdentityError):
    """The PKCS#11 token or key is unavailable."""

    code = "token"
    message = "Không truy cập được thiết bị ký số (token)."


class WrongPinError(TokenError):
    """The token refused the PIN."""

    code = "wrong_pin"
    message = "Mã PIN của thiết bị ký số không đúng."


class SecretError(SigningError):
    """An encrypted secret cannot be decrypted."""

    code = "secret"
    message = "Không giải mã được dữ liệu khóa đã lưu (sai khóa chủ hoặc dữ liệu hỏng)."


class RemoteSigningError(SigningError):
    """The remote signing service failed."""

    code = "remote_error"
    message = "Dịch vụ ký số từ xa báo lỗi."


class RemoteSigningRefusedError(RemoteSigningError):
    """The user refused the request on the phone."""

    code = "remote_refused"
    message = "Người ký đã từ chối yêu cầu ký trên điện thoại."


class RemoteSigningTimeoutError(RemoteSigningError):
    """The user did not confirm in time."""

    code = "remote_timeout"
    message = "Hết thời gian chờ người ký xác nhận trên điện thoại."


class VerificationInputError(InvalidPdfError):
    """The PDF to verify cannot be read."""

    code = "verify_input"
    message = "Không đọc được tệp PDF cần kiểm tra chữ ký."


class DocumentModifiedError(SigningError):
    """An earlier signature no longer matches the document, or it was changed after it."""

    code = "document_modified"
    message = "Văn bản đã bị thay đổi sau chữ ký trước đó, không thể ký tiếp."


class AlreadySignedError(SigningError):
    """A plain stamp cannot be added once the document carries signatures."""

    code = "already_signed"
    message = (
        "Văn bản đã có chữ ký số: chỉ có thể ký nháy bằng chữ ký số, "
        "không thể thêm hình ảnh ký nháy."
    )
