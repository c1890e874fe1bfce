"""The console's words in English and Korean; the language comes from the toggle, Accept-Language or
FLEET_LANGUAGE, in that order."""

from __future__ import annotations

LANGUAGES = ("en", "ko")

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "title": "Agent Fleet console", "runs": "Runs", "approvals": "Approvals", "dead_letters": "Dead letters",
        "failed_tasks": "Failed tasks", "ledger": "Ledger", "workers": "Workers (Flower)", "sign_out": "Sign out",
        "sign_in": "Sign in", "api_key": "API key", "signed_in_as": "Signed in as", "filter": "Filter",
        "status": "Status", "any": "any", "input": "Input", "error": "Error", "mode": "Mode", "key": "API key",
        "since_hours": "Last hours", "created": "Created", "next_page": "Next page", "no_runs": "No runs match.",
        "run": "Run", "stages": "Stages", "subtasks": "Subtasks", "timeline": "Timeline", "output": "Output",
        "approve": "Approve", "reject": "Reject", "reason": "Reason", "cancel": "Cancel run",
        "plan": "Plan", "plan_digest": "Plan digest (SHA-256)", "held_because": "Held because",
        "expires": "Expires", "ledger_preview": "Ledger effects (preview, nothing applied)", "account": "Account",
        "before": "Before", "after": "After", "codes": "Rule codes", "anomalies": "Anomaly scores",
        "requeue": "Requeue", "discard": "Discard", "requeue_all": "Requeue all matching", "count_first": "Count",
        "matching": "matching", "task": "Task", "queue": "Queue", "detail": "Detail", "raw": "Raw message (masked)",
        "retry": "Retry", "retried_as": "Retried as", "exception": "Exception", "when": "When",
        "look_up": "Look up", "balance": "Balance", "currency": "Currency", "events": "Events",
        "rejections": "Rejections by code (last 24 h)", "correlation": "Correlation id", "results": "Results",
        "nothing": "Nothing here.", "live": "Live", "verdict": "Verdict", "tool": "Tool", "requeueable": "Requeueable",
        "done": "Done.", "language": "한국어", "resume": "Resume from the failed stage", "rerun": "Run again as a new run",
        "forbidden": "This key may not do that.", "held_runs": "Runs awaiting approval", "duration": "Duration (ms)",
        "owner": "Owner", "confirm_count": "Requeue these {n}", "reports": "Reports", "alerts": "Alerts",
        "health": "Health", "open": "Open", "kind": "Kind", "recent_results": "Latest results",
    },
    "ko": {
        "title": "에이전트 플릿 콘솔", "runs": "실행", "approvals": "승인", "dead_letters": "데드 레터",
        "failed_tasks": "실패한 작업", "ledger": "원장", "workers": "워커 (Flower)", "sign_out": "로그아웃",
        "sign_in": "로그인", "api_key": "API 키", "signed_in_as": "로그인:", "filter": "필터",
        "status": "상태", "any": "전체", "input": "입력", "error": "오류", "mode": "모드", "key": "API 키",
        "since_hours": "최근 시간", "created": "생성", "next_page": "다음 페이지", "no_runs": "일치하는 실행이 없습니다.",
        "run": "실행", "stages": "단계", "subtasks": "하위 작업", "timeline": "타임라인", "output": "출력",
        "approve": "승인", "reject": "거부", "reason": "사유", "cancel": "실행 취소",
        "plan": "계획", "plan_digest": "계획 다이제스트 (SHA-256)", "held_because": "보류 사유",
        "expires": "만료", "ledger_preview": "원장 영향 (미리보기, 적용 안 됨)", "account": "계정",
        "before": "이전", "after": "이후", "codes": "규칙 코드", "anomalies": "이상 점수",
        "requeue": "다시 대기열에", "discard": "폐기", "requeue_all": "일치하는 모두 다시 대기열에", "count_first": "개수 확인",
        "matching": "일치", "task": "작업", "queue": "큐", "detail": "상세", "raw": "원본 메시지 (마스킹됨)",
        "retry": "재시도", "retried_as": "재시도 ID", "exception": "예외", "when": "시각",
        "look_up": "조회", "balance": "잔액", "currency": "통화", "events": "이벤트",
        "rejections": "코드별 거부 (최근 24시간)", "correlation": "상관 ID", "results": "결과",
        "nothing": "항목이 없습니다.", "live": "실시간", "verdict": "판정", "tool": "도구", "requeueable": "재처리 가능",
        "done": "완료되었습니다.", "language": "English", "resume": "실패한 단계부터 재개", "rerun": "새 실행으로 다시 실행",
        "forbidden": "이 키로는 할 수 없습니다.", "held_runs": "승인 대기 중인 실행", "duration": "소요 (ms)",
        "owner": "소유자", "confirm_count": "{n}개 다시 대기열에", "reports": "보고서", "alerts": "알림",
        "health": "상태 등급", "open": "열기", "kind": "종류", "recent_results": "최근 결과",
    },
}  # fmt: skip


def choose(toggle: str | None, accept_language: str, default: str) -> str:
    """The page's language: an explicit choice, else the browser's first known language, else the fleet's."""
    if toggle in LANGUAGES:
        return toggle
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return default if default in LANGUAGES else "en"


def words(language: str) -> dict[str, str]:
    """The messages of a language."""
    return MESSAGES.get(language, MESSAGES["en"])
