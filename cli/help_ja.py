"""The Japanese of the ``shomei`` command's help texts, keyed by their English text.

Keys are the English texts exactly as the commands define them (docstrings after
``inspect.cleandoc``); :func:`cli.i18n.apply` shows these under a Japanese language setting.
``tests/cli/test_language.py`` fails when a command or option has a help text missing here,
so a new or reworded help text comes with its Japanese.
"""

from __future__ import annotations

_SETTINGS = "RA の設定ファイル(TOML、[ra] テーブル)。"

HELP_JA: dict[str, str] = {
    # shomei ra serve
    "Serve the RA web application (console) under gunicorn until stopped (Ctrl-C).": (
        "RA の Web アプリケーション(管理画面)を gunicorn で公開します(Ctrl-C で停止)。"
    ),
    "Address and port to listen on (HOST:PORT).": "待ち受けるアドレスとポート(HOST:PORT)。",
    "Number of worker processes.": "ワーカープロセスの数。",
    # shomei
    "Shomei (証明): the PKI of a welfare-claims federation.": (
        "Shomei(証明): 連合会の請求書署名のための認証基盤。"
    ),
    "Log details (to stderr).": "詳細なログ(エラーの詳細を含む)を標準エラー出力に表示します。",
    # shomei ca
    "Offline CA operator: ceremonies, signing request batches, CRLs, ledger.": (
        "オフライン認証局の操作: 鍵生成式、要求バッチへの署名、CRL、台帳。"
    ),
    "Sign the RA request batch IN_FILE; write the signed result batch to OUT_FILE.\n\n"
    "The same IN_FILE again signs nothing: a finished batch's kept result is written again,\n"
    "byte for byte (no shares needed), and a batch a crash left unfinished is finished.": (
        "RA の要求バッチ IN_FILE に署名し、署名済みの結果バッチを OUT_FILE に書き出します。\n\n"
        "同じ IN_FILE をもう一度渡しても二重には署名しません。完了したバッチは保管してある結果を"
        "同じバイト列のまま書き出し(分割鍵は不要)、異常終了で途中になったバッチは続きを処理します。"
    ),
    "The CA home folder (its settings are DIR/ca.toml).": (
        "認証局のホームフォルダ(設定は DIR/ca.toml)。"
    ),
    "A custodian share (repeat M times); without it each custodian types a share.": (
        "鍵管理者の分割鍵ファイル(M 回指定)。省略すると各管理者が分割鍵を入力します。"
    ),
    "File holding the PKCS#11 token PIN (else asked, hidden).": (
        "PKCS#11 トークンの PIN を記したファイル(省略時は非表示で入力)。"
    ),
    "Issue a CRL now (on demand, or on schedule before the current one is due).": (
        "CRL を今すぐ発行します(随時、または現在の CRL の期限前の定期発行)。"
    ),
    "Check the ledger, then show the current CRL, batches, serials and anything unfinished.\n\n"
    "Exits 1 when there is no CRL or it has expired, a batch was left unfinished, or the CA\n"
    "cannot issue certificates; 2 when the ledger may not be used (lost, damaged, older than its\n"
    "record or than the CRL folder: restore it).": (
        "台帳を確認してから、現在の CRL、バッチ、シリアル番号、未完了の処理を表示します。\n\n"
        "CRL がない・期限切れ、途中で止まったバッチがある、または証明書を発行できない状態のときは"
        "終了コード 1、台帳を使えない(失われた・壊れた・記録や CRL フォルダより古い: 復元が必要)"
        "ときは 2 です。"
    ),
    "Finish batch BATCH_ID that a crash left unfinished; write its result to OUT_FILE.\n\n"
    "What the ledger recorded as signed is answered from the ledger, never signed twice;\n"
    "serials reserved but never signed are voided; the rest is signed now.": (
        "異常終了で途中になったバッチ BATCH_ID を最後まで処理し、結果を OUT_FILE に書き出します。"
        "\n\n台帳に署名済みと記録された証明書は台帳から返し、二度と署名しません。予約だけされて"
        "署名されなかったシリアル番号は無効にし、残りをここで署名します。"
    ),
    "The request batch file, when the CA home kept no copy of it.": (
        "要求バッチファイル(認証局ホームに控えが残っていないときに指定)。"
    ),
    "Abandon batch BATCH_ID for good; write the result to OUT_FILE for the RA.\n\n"
    "Certificates already signed for it are delivered in the result (or revoked, with\n"
    "--revoke-signed, and listed on its CRL); its revocations are applied; every other issue\n"
    'request is answered "abandoned", and the RA may send it again (shomei ra re-request).': (
        "バッチ BATCH_ID の処理を打ち切り、RA に渡す結果を OUT_FILE に書き出します。\n\n"
        "署名済みの証明書は結果に含めて届けます(--revoke-signed のときは失効させ CRL に載せます)。"
        "失効の依頼は処理し、その他の発行依頼には「打ち切り」と答えます。RA はそれらを送り直せます"
        "(shomei ra re-request)。"
    ),
    "Revoke the certificates already signed for the batch instead of delivering them.": (
        "署名済みの証明書を届けず、失効させます。"
    ),
    "Do not ask for confirmation.": "確認を求めません。",
    "Run the key ceremony described by CONFIG_FILE (reviewed, strict TOML).": (
        "CONFIG_FILE(確認済みの厳格な TOML)に記された鍵生成式を実行します。"
    ),
    "Print the plan and check it; change nothing.": (
        "計画を表示して確認します(何も変更しません)。"
    ),
    "A custodian share opening an existing CA key (repeat M times).": (
        "既存の認証局の鍵を開く鍵管理者の分割鍵ファイル(M 回指定)。"
    ),
    "File holding the PKCS#11 token PIN (else asked when needed).": (
        "PKCS#11 トークンの PIN を記したファイル(省略時は必要なときに入力)。"
    ),
    "Check the ceremony transcripts: each one's hash chain and signature, and their links.\n\n"
    "Without TRANSCRIPTS, all of them in order: a missing, moved or replaced transcript is\n"
    "reported, as is a CA certificate or root CRL that no transcript records.": (
        "鍵生成式の記録を検証します: 各記録のハッシュ連鎖と署名、記録どうしのつながり。\n\n"
        "TRANSCRIPTS を省略するとすべての記録を順に検証し、欠けた・移された・差し替えられた"
        "記録や、どの記録にもない認証局証明書・ルート CRL を報告します。"
    ),
    "Pin the RA link CERTIFICATE (PEM) so the CA accepts batches it signed.": (
        "RA の連携証明書 CERTIFICATE(PEM)を登録し、その署名したバッチを受け付けます。"
    ),
    "A custodian types a share back (hidden); prints OK with its fingerprint, or NG.": (
        "鍵管理者が分割鍵を入力して確認します(非表示)。正しければ OK と指紋、誤りは NG。"
    ),
    # shomei demo
    "Build a complete demonstration federation in FOLDER through the real code paths.": (
        "FOLDER に実際の処理でデモ用の連合会一式を作ります。"
    ),
    "Replace an earlier demo folder.": "以前のデモフォルダを作り直します。",
    "Then run it (web application, scheduler, SMTP sink) until Ctrl-C; "
    "an earlier demo in FOLDER is reused unless --fresh.": (
        "続けてデモを起動します(Web アプリケーション、スケジューラ、メール受信)。"
        "Ctrl-C で停止します。"
        "FOLDER に以前のデモがあれば、--fresh を付けない限りそれを使います。"
    ),
    "With --serve: the web application's port on 127.0.0.1.": (
        "--serve のとき: Web アプリケーションが 127.0.0.1 で待ち受けるポート。"
    ),
    "With --serve: the SMTP sink's port on 127.0.0.1 (default: a free one).": (
        "--serve のとき: メール受信(SMTP)が 127.0.0.1 で待ち受けるポート(既定: 空いているポート)。"
    ),
    # shomei sign / verify / notice
    "Sign CLAIM: a detached CMS signature CLAIM.p7s, or PAdES inside a PDF (--pades).": (
        "請求ファイル CLAIM に署名します: 分離署名 CLAIM.p7s(CMS)、または PDF 内の署名"
        "(--pades、PAdES)。"
    ),
    "PKCS#12 file with the key and certificate.": "鍵と証明書の入った PKCS#12 ファイル。",
    "PEM private key (with --cert).": "PEM 形式の秘密鍵(--cert と共に)。",
    "PEM certificate (with --key or --pkcs11-module).": (
        "PEM 形式の証明書(--key または --pkcs11-module と共に)。"
    ),
    "Extra CA certificates to attach.": "署名に添付する追加の CA 証明書。",
    "File whose first line is the password.": "1 行目がパスワードのファイル。",
    "PKCS#11 module (.so) of the token.": "トークンの PKCS#11 モジュール(.so)。",
    "Label of the PKCS#11 token.": "PKCS#11 トークンのラベル。",
    "Label of the key on the token.": "トークン上の鍵のラベル。",
    "File whose first line is the token PIN.": "1 行目がトークンの PIN のファイル。",
    "Sign a PDF claim inside the PDF (PAdES).": "PDF の請求書に PDF 内署名(PAdES)をします。",
    "Output file (default CLAIM.p7s).": "出力ファイル(既定は CLAIM.p7s)。",
    "Overwrite an existing output file.": "既存の出力ファイルを上書きします。",
    "Verify a claim (PATH with PATH.p7s, or a signed PDF) or every claim of a folder.": (
        "請求ファイル(PATH と PATH.p7s、または署名付き PDF)、またはフォルダ内のすべての"
        "請求ファイルの署名を検証します。"
    ),
    "Detached signature (default PATH.p7s).": "分離署名ファイル(既定は PATH.p7s)。",
    "Trusted root (PEM).": "信頼するルート証明書(PEM)。",
    "CRL (DER or PEM); repeatable.": "CRL(DER または PEM)。複数指定できます。",
    "Extra intermediate certificates.": "追加の中間証明書。",
    "Fetch each signer's CRL from the URL in its certificate.": (
        "署名者の証明書に記載された URL から CRL を取得して確認します。"
    ),
    "CSV report for Excel (UTF-8 with BOM).": "Excel 用の CSV レポート(BOM 付き UTF-8)。",
    "Processes (default: all cores).": "プロセス数(既定: すべてのコア)。",
    "Sealed notices (暗号化されたお知らせ): seal a document to a certificate, open it.": (
        "暗号化されたお知らせ: 文書を証明書の持ち主あてに暗号化し、また復号します。"
    ),
    "Encrypt DOCUMENT to the holder of the certificate --to (CMS AuthEnvelopedData, AES-GCM).": (
        "文書 DOCUMENT を証明書 --to の持ち主あてに暗号化します(CMS AuthEnvelopedData、AES-GCM)。"
    ),
    "Recipient certificate (PEM).": "受取人の証明書(PEM)。",
    "Sealed output (DER .p7m).": "暗号化したお知らせの出力先(DER、.p7m)。",
    "Decrypt a sealed notice with your key (e.g. the reissued issuance password).": (
        "暗号化されたお知らせを自分の鍵で復号します(再発行された証明書発行用パスワードなど)。"
    ),
    "PKCS#12 file with your key and certificate.": "自分の鍵と証明書の入った PKCS#12 ファイル。",
    "PEM certificate (with --key).": "PEM 形式の証明書(--key と共に)。",
    "Write the document here (default: stdout).": "文書の出力先(既定: 標準出力)。",
    # shomei ra
    "RA operator: database, accounts, applications, audit log.": (
        "RA の操作: データベース、アカウント、申請、監査ログ。"
    ),
    "Create or upgrade the RA database schema, and the key that seals its secrets.": (
        "RA のデータベースのスキーマを作成・更新し、秘密情報を封じる鍵を作成します。"
    ),
    "Create a console user USER_ID (staff, or --admin); print its secrets once.\n\n"
    "The way to create the first administrator.  Prints the login password, the TOTP secret\n"
    "and its otpauth:// URI (for an authenticator app) only now; a taken USER_ID is refused.": (
        "管理画面の利用者 USER_ID(職員、--admin で管理者)を作成し、その秘密情報を一度だけ表示"
        "します。\n\n最初の管理者を作る方法です。ログインパスワード、TOTP の秘密鍵と otpauth:// URI"
        "(認証アプリ用)はこのときにしか表示しません。使用中の USER_ID は拒否します。"
    ),
    "The person's name (氏名).": "氏名。",
    "The person's mail address.": "メールアドレス。",
    "An administrator (管理者) rather than staff (職員).": "職員ではなく管理者にします。",
    "List the batches the CA has not answered yet and the applications it abandoned.\n\n"
    "Exits 1 when applications wait to be sent again (shomei ra re-request).": (
        "認証局がまだ応答していないバッチと、認証局が打ち切った申請を一覧します。\n\n"
        "送り直しを待つ申請があるときは終了コード 1 です(shomei ra re-request)。"
    ),
    "Send again the applications the CA abandoned in BATCH_ID (発行待ち → 発行依頼中).\n\n"
    "Audited; the next dispatch puts them into a new batch.": (
        "認証局がバッチ BATCH_ID で打ち切った申請を送り直します(発行待ち → 発行依頼中)。\n\n"
        "監査記録に残り、次の送信で新しいバッチに入ります。"
    ),
    "Offline mode: write the request file of BATCH_ID (not yet answered) to the outbox again.": (
        "オフライン運用: 未応答のバッチ BATCH_ID の要求ファイルを"
        "送信フォルダにもう一度書き出します。"
    ),
    "The RA settings file (TOML, table [ra]).": _SETTINGS,
    "The RA settings file (ra.toml).": _SETTINGS,
    "Create demo offices, an agent, staff and an admin; print their one-time passwords.": (
        "デモ用の事業所・代理人・職員・管理者を作成し、初回パスワードを表示します。"
    ),
    "Create office and agent accounts from CSV_FILE (UTF-8 or CP932), all or none.": (
        "CSV_FILE(UTF-8 または CP932)から事業所と代理人のアカウントを作成します"
        "(全件か、何もしないか)。"
    ),
    "Show an application and its history from the audit log (Japan time).": (
        "申請とその履歴を監査ログから表示します(日本時間)。"
    ),
    "Check the hash chain and the signed anchors of the audit log (exit 1 if tampered).": (
        "監査ログのハッシュ連鎖と署名付きアンカーを検証します(改ざんがあれば終了コード 1)。"
    ),
    "Save the certificate list (証明書一覧) as CSV that Excel opens (CP932 by default).": (
        "証明書一覧を Excel で開ける CSV(既定は CP932)で保存します。"
    ),
    "CP932 (what Japanese Excel opens) or UTF-8 with a byte-order mark.": (
        "CP932(日本語版 Excel が開く文字コード)または BOM 付き UTF-8。"
    ),
    "Applicant type (事業所/代理人/職員); repeat for several. Default: all.": (
        "申請者の種別(事業所/代理人/職員)。複数指定できます。既定: すべて。"
    ),
    "A user ID, or its beginning.": "利用者 ID、またはその先頭部分。",
    "Match the user ID exactly, not as a prefix.": "利用者 ID を前方一致でなく完全一致で探します。",
    "A status code (e.g. issued); repeat for several. Default: all.": (
        "状態コード(例: issued)。複数指定できます。既定: すべて。"
    ),
    "Run the scheduled job NAME once, now (the scheduler need not be running).\n\n"
    "Exits 2 when the job left work it could not finish, and says what to do about it; 1 when\n"
    "a CRL from the CA was checked and refused (it would lose a revocation).": (
        "定期処理 NAME を今すぐ 1 回実行します(スケジューラーが動いていなくても構いません)。\n\n"
        "処理しきれない作業が残ったときは終了コード 2 でその対処を表示し、認証局からの CRL を"
        "確認して拒否した(失効が失われる)ときは 1 です。"
    ),
    "Run the RA's scheduled jobs until interrupted (one active scheduler at a time).": (
        "RA の定期処理を中断されるまで実行します(同時に動くスケジューラーは 1 つだけ)。"
    ),
    "Name of this scheduler in the lease (default: host:pid:random).": (
        "リースに記すこのスケジューラーの名前(既定: ホスト:PID:乱数)。"
    ),
    "Register a CRL file the CA issued (A6): verified, stored, published, 失効待ち→失効済み.": (
        "認証局が発行した CRL ファイルを登録します(A6): 検証・保存・公開し、"
        "失効待ち→失効済みにします。"
    ),
    "Make the RA's link key (encrypted) and certificate in FOLDER, for the CA to pin.": (
        "RA の連携用の鍵(暗号化)と証明書を FOLDER に作ります(認証局に登録してもらうもの)。"
    ),
    "The RA's name in the link certificate.": "連携証明書に記す RA の名前。",
}
