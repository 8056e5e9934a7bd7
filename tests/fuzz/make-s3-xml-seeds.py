"""Write seed inputs for fuzz_s3_xml, and a dictionary of XML and S3 tokens,
into DIR (argv[1]) and DIR.dict: the fuzzer mutates from real answers.

All but the last few are verbatim answers of the Ceph 16.2 RGW of
tests/rgw/start-rgw.sh (curl --aws-sigv4): a ListObjectsV2 page cut by
max-keys (IsTruncated true, NextContinuationToken) and a whole one, an
empty one; multi-object deletes, verbose (Deleted and Error entries, the
errors from a bucket policy denying s3:DeleteObject) and quiet; error
bodies. The last few are what AWS and other stores also write: layout
whitespace, character references, a namespace prefix, CDATA."""
import os, sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
seeds = {
    "rgw-list-truncated": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>seeds</Name>'
        '<Prefix>vol/</Prefix><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated><Contents>'
        '<Key>vol/chunks/0000000000000000-1</Key>'
        '<LastModified>2026-12-03T17:05:42.288Z</LastModified>'
        '<ETag>&quot;39735d10e25c03942139bfb94292ad7c&quot;</ETag><Size>34</Size>'
        '<StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents><Contents>'
        '<Key>vol/chunks/0000000000000001-1</Key>'
        '<LastModified>2026-12-03T17:05:42.301Z</LastModified>'
        '<ETag>&quot;75f2f9d6d115d22a7679b0dd144cf25e&quot;</ETag><Size>34</Size>'
        '<StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents>'
        '<NextContinuationToken>vol/chunks/0000000000000001-1</NextContinuationToken>'
        '<KeyCount>2</KeyCount></ListBucketResult>'),
    "rgw-list-complete": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>seeds</Name>'
        '<Prefix>vol/</Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents>'
        '<Key>vol/chunks/0000000000000000-1</Key>'
        '<LastModified>2026-12-03T17:05:42.288Z</LastModified>'
        '<ETag>&quot;39735d10e25c03942139bfb94292ad7c&quot;</ETag><Size>34</Size>'
        '<StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents><Contents>'
        '<Key>vol/chunks/0000000000000001-1</Key>'
        '<LastModified>2026-12-03T17:05:42.301Z</LastModified>'
        '<ETag>&quot;75f2f9d6d115d22a7679b0dd144cf25e&quot;</ETag><Size>34</Size>'
        '<StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents><Contents>'
        '<Key>vol/odd &amp;&lt;&gt;</Key><LastModified>2026-12-03T17:05:42.317Z</LastModified>'
        '<ETag>&quot;f9e5e1bb1c5618894760b939a105bfdb&quot;</ETag><Size>24</Size>'
        '<StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents><Contents>'
        '<Key>vol/superblock</Key><LastModified>2026-12-03T17:05:42.269Z</LastModified>'
        '<ETag>&quot;9b2238c4a893dae5650647270e3eb5bd&quot;</ETag><Size>19</Size>'
        '<StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents>'
        '<KeyCount>4</KeyCount></ListBucketResult>'),
    "rgw-list-empty": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>seeds</Name>'
        '<Prefix>nothing/</Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>'
        '<KeyCount>0</KeyCount></ListBucketResult>'),
    "rgw-delete-mixed": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Error>'
        '<Key>locked/a</Key><VersionId></VersionId><Code>AccessDenied</Code>'
        '<Message>AccessDenied</Message></Error><Error><Key>locked/b</Key><VersionId>'
        '</VersionId><Code>AccessDenied</Code><Message>AccessDenied</Message></Error><Deleted>'
        '<Key>open/c</Key></Deleted></DeleteResult>'),
    "rgw-delete-quiet-error": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Error>'
        '<Key>locked/a</Key><VersionId></VersionId><Code>AccessDenied</Code>'
        '<Message>AccessDenied</Message></Error></DeleteResult>'),
    "rgw-delete-quiet": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>'),
    "rgw-error-nosuchkey": (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message></Message>'
        '<BucketName>seeds</BucketName>'
        '<RequestId>tx00000d78122645ff0cc17-006b11a166-100c-default</RequestId>'
        '<HostId>100c-default-default</HostId></Error>'),
    "rgw-error-signature": (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code>'
        '<Message></Message>'
        '<RequestId>tx00000220bfa267878a8d9-006b11a187-100c-default</RequestId>'
        '<HostId>100c-default-default</HostId></Error>'),
    "rgw-error-invalidobjectname": (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidObjectName</Code><Message>'
        '</Message><BucketName>seeds</BucketName>'
        '<RequestId>tx000001a726030ac493df1-006b11a180-100c-default</RequestId>'
        '<HostId>100c-default-default</HostId></Error>'),
    "rgw-delete-verbose": (
        '<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/'
        '2006-03-01/"><Deleted><Key>vol/' + "x" * 1100 + '</Key></Deleted><Deleted><Key>vol/'
        'never-there</Key></Deleted><Deleted><Key>vol/chunks/0000000000000000-1</Key></Deleted>'
        '</DeleteResult>'),
    "aws-error-layout": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>SignatureDoesNotMatch</Code>\n'
        '  <Message>The request signature we calculated does not match the signature you '
        'provided. &lt;Check&gt; your key &amp; signing method.&#x20;&#233;</Message>\n'
        '  <RequestId>4442587FB7D0A2F9</RequestId>\n</Error>\n'),
    "prefixed-list": (
        '<s3:ListBucketResult xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/"><s3:IsTruncated>'
        'false</s3:IsTruncated><s3:Contents><s3:Key><![CDATA[p/<&>]]></s3:Key><s3:Size>0'
        '</s3:Size></s3:Contents><!-- c --></s3:ListBucketResult>'),
}
for name, text in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(text.encode())

tokens = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<Error>", "</Error>", "<Code>", "</Code>",
          "<Message>", "</Message>", "<ListBucketResult>", "</ListBucketResult>", "<Contents>",
          "</Contents>", "<Key>", "</Key>", "<Size>", "</Size>", "<IsTruncated>", "</IsTruncated>",
          "true", "false", "18446744073709551615", "<DeleteResult>", "</DeleteResult>",
          "<Deleted>", "</Deleted>", "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"",
          "xmlns:s3=", "s3:", "<![CDATA[", "]]>", "<!--", "-->", "<?", "?>", "/>", "</",
          "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#", "&#x", ";", "<!DOCTYPE", "<!ENTITY",
          "SYSTEM", "\xef\xbb\xbf", "\xc3\xa9", "\xf0\x9f\x98\x80"]
def dict_escape(t):
    return "".join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\' else "\\x%02x" % ord(c)
                   for c in t)
with open(out.rstrip("/") + ".dict", "w") as f:
    for t in tokens:
        f.write('"%s"\n' % dict_escape(t))
