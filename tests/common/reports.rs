//! Reports that come back to a list's bounce address, as receiving
//! systems write them: an RFC 3464 delivery status notification and an
//! RFC 5965 (ARF) complaint. The tests build forged and genuine ones alike.

use super::rand_id;

/// An RFC 3464 report that `failed` could not take the mail.
pub fn dsn(to: &str, failed: &str, status: &str, subject: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nTo: {to}\r\nSubject: {subject}\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <{id}@mx.example.org>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: {status}\r\nDiagnostic-Code: smtp; 550 {status} User unknown\r\n\r\n--b1--\r\n",
        id = rand_id()
    )
}

/// An ARF complaint (RFC 5965). `rcpt` goes into Original-Rcpt-To; `original`
/// is attached as message/rfc822.
pub fn arf(to: &str, subject: &str, rcpt: Option<&str>, original: Option<&str>) -> String {
    let mut m = format!(
        "From: Abuse Desk <fbl@mailbox.example>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}@mailbox.example>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"arf-b7c1\"\r\n\r\n--arf-b7c1\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n--arf-b7c1\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\n",
        id = rand_id()
    );
    if let Some(rcpt) = rcpt {
        m.push_str(&format!("Original-Rcpt-To: {rcpt}\r\n"));
    }
    m.push_str("\r\n");
    if let Some(original) = original {
        m.push_str(
            "--arf-b7c1\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n",
        );
        m.push_str(original.trim_end());
        m.push_str("\r\n\r\n");
    }
    m.push_str("--arf-b7c1--\r\n");
    m
}
