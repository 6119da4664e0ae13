"""Typed domain errors; each carries a Vietnamese message a view can show as is."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user may cause; `message` is Vietnamese."""

    code = "domain_error"
    status = 400
    message = "Yêu cầu không hợp lệ."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        if code:
            self.code = code


class ValidationFailed(DomainError):
    code = "invalid_input"
    status = 400
    message = "Dữ liệu nhập không hợp lệ."


class NotFound(DomainError):
    code = "not_found"
    status = 404
    message = "Không tìm thấy."


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    message = "Bạn không có quyền thực hiện thao tác này."


class Conflict(DomainError):
    code = "conflict"
    status = 409
    message = "Dữ liệu đã bị người khác thay đổi. Vui lòng tải lại và thử lại."


class AuthError(DomainError):
    code = "invalid_credentials"
    status = 401
    message = "Tên đăng nhập hoặc mật khẩu không đúng."


class AccountLocked(AuthError):
    code = "account_locked"
    status = 423
    message = "Tài khoản tạm thời bị khóa do đăng nhập sai nhiều lần."


class TooManyAttempts(AuthError):
    code = "rate_limited"
    status = 429
    message = "Quá nhiều lần đăng nhập sai từ địa chỉ này. Vui lòng thử lại sau ít phút."


class OtpRequired(AuthError):
    code = "otp_required"
    status = 401
    message = "Vui lòng nhập mã xác thực một lần (OTP) từ ứng dụng trên điện thoại."


class InvalidOtp(AuthError):
    code = "invalid_otp"
    status = 401
    message = "Mã xác thực (OTP) không đúng hoặc đã hết hạn."


class OtpEnrolmentRequired(AuthError):
    code = "otp_enrolment_required"
    status = 401
    message = (
        "Vai trò của bạn bắt buộc xác thực hai lớp. Vui lòng đăng nhập trên trình duyệt "
        "để đăng ký ứng dụng OTP trước."
    )
